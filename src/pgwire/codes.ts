/**
 * Names for the type bytes of protocol v3 messages (and the field codes of
 * ErrorResponse), so the code reads `Frontend.Query` instead of `0x51 // Q`.
 * A new message (the COPY sub-protocol, say) gets its code here first.
 *
 * @example
 * ```ts
 * if (frame.type === Frontend.Sync) out.readyForQuery("I");
 * out.begin(Backend.CommandComplete).cstring("SELECT 1").end();
 * ```
 */

/** Type bytes of messages the client sends. */
export const Frontend = {
  Bind: 0x42, // 'B'
  Close: 0x43, // 'C'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyFail: 0x66, // 'f'
  Describe: 0x44, // 'D'
  Execute: 0x45, // 'E'
  Flush: 0x48, // 'H'
  FunctionCall: 0x46, // 'F'
  Parse: 0x50, // 'P'
  /** PasswordMessage, SASLInitialResponse and SASLResponse share this type. */
  Password: 0x70, // 'p'
  Query: 0x51, // 'Q'
  Sync: 0x53, // 'S'
  Terminate: 0x58, // 'X'
} as const;

/** Type bytes of messages the server sends. */
export const Backend = {
  Authentication: 0x52, // 'R'
  BackendKeyData: 0x4b, // 'K'
  BindComplete: 0x32, // '2'
  CloseComplete: 0x33, // '3'
  CommandComplete: 0x43, // 'C'
  DataRow: 0x44, // 'D'
  EmptyQueryResponse: 0x49, // 'I'
  ErrorResponse: 0x45, // 'E'
  NegotiateProtocolVersion: 0x76, // 'v'
  NoData: 0x6e, // 'n'
  NoticeResponse: 0x4e, // 'N'
  ParameterDescription: 0x74, // 't'
  ParameterStatus: 0x53, // 'S'
  ParseComplete: 0x31, // '1'
  PortalSuspended: 0x73, // 's'
  ReadyForQuery: 0x5a, // 'Z'
  RowDescription: 0x54, // 'T'
} as const;

/** Sub-codes of an Authentication ('R') message. */
export const AuthRequest = {
  Ok: 0,
  CleartextPassword: 3,
  Md5Password: 5,
  Sasl: 10,
  SaslContinue: 11,
  SaslFinal: 12,
} as const;

/** Field codes of ErrorResponse / NoticeResponse. */
export const ErrorField = {
  Severity: 0x53, // 'S'
  /** Severity, never localized. */
  SeverityRaw: 0x56, // 'V'
  Code: 0x43, // 'C'
  Message: 0x4d, // 'M'
  Detail: 0x44, // 'D'
  Hint: 0x48, // 'H'
  Position: 0x50, // 'P'
} as const;

/** One-byte answers to SSLRequest / GSSENCRequest. */
export const EncryptionAnswer = {
  Accept: "S",
  Refuse: "N",
} as const;
