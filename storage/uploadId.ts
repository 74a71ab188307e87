/**
 * Upload ids: the server's own are 32 lower-case hex characters (@tus/server's Uid.rand); a
 * pre-create hook may choose others (tusd's receivers do, e.g. `prefix-<uuid>`), limited to
 * letters, digits, `-` and `_`, so an id is always one safe path segment and object key.
 */
export const UPLOAD_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
