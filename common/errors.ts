// Coded errors: one closed table of codes, namespaced by part. Hostile input gets an
// EdgewardError with one of these codes; misuse of internal APIs throws TypeError instead.
import { CODES, type ErrorCode } from './codes.js';

export type { ErrorCode } from './codes.js';
export { CODES } from './codes.js';

export class EdgewardError extends Error {
  override readonly name = 'EdgewardError';
  readonly code: ErrorCode;
  readonly statusCode: number;
  /** Extra, non-secret detail for logs and the audit trail (never sent to clients). */
  readonly detail: Readonly<Record<string, unknown>> | undefined;
  /**
   * Sent to the client instead of the table's generic message, for facts the client may know
   * and needs to act (until when its quarantine lasts, who can lift it). Never internal detail.
   */
  readonly clientMessage: string | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    options?: {
      cause?: unknown;
      detail?: Record<string, unknown>;
      statusCode?: number;
      clientMessage?: string;
    },
  ) {
    const def = CODES[code];
    super(message ?? def.message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.statusCode = options?.statusCode ?? def.status;
    this.detail = options?.detail;
    this.clientMessage = options?.clientMessage;
  }
}

export function isCode(err: unknown, code: ErrorCode): boolean {
  return err instanceof EdgewardError && err.code === code;
}

/**
 * The fixed shape clients see. The message is the table's generic text (or the error's
 * clientMessage), never internal detail.
 */
export interface ClientError {
  statusCode: number;
  code: string;
  error: string;
  message: string;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  410: 'Gone',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? 'Error';
}

export function toClientError(err: EdgewardError): ClientError {
  return {
    statusCode: err.statusCode,
    code: err.code,
    error: statusText(err.statusCode),
    message: err.clientMessage ?? CODES[err.code].message,
  };
}
