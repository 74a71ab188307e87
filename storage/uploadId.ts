/** Upload ids are the server's own: 32 lower-case hex characters (@tus/server's Uid.rand). */
export const UPLOAD_ID = /^[0-9a-f]{32}$/;
