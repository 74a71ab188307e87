"""Runs tusd's example hook receiver (test/fixtures/tusd/server.py) on the port given as the
first argument instead of its fixed 8000, unchanged otherwise."""
import http.server
import pathlib
import sys

PORT = int(sys.argv[1])


class _OnPort(http.server.HTTPServer):
    def __init__(self, _address, handler):
        super().__init__(('127.0.0.1', PORT), handler)


http.server.HTTPServer = _OnPort
script = pathlib.Path(__file__).resolve().parent.parent / 'fixtures' / 'tusd' / 'server.py'
# Prints go to the test's log, unbuffered, so a failing test shows what the receiver saw.
sys.stdout.reconfigure(line_buffering=True)
exec(compile(script.read_text(), str(script), 'exec'), {'__name__': '__main__'})
