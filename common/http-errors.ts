// One mapping from fastify's own errors (schema, body size, media type, JSON parsing) to our
// coded errors, shared by every HTTP service so they answer hostile input the same way.
import type { FastifyError } from 'fastify';
import { EdgewardError } from './errors.js';

export function toEdgewardError(err: FastifyError | EdgewardError | Error): EdgewardError {
  if (err instanceof EdgewardError) return err;
  const fe = err as FastifyError;
  if (fe.validation) return new EdgewardError('ERR_INPUT_MALFORMED', fe.message, { cause: err });
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new EdgewardError('ERR_INPUT_TOO_LARGE', undefined, { cause: err });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new EdgewardError('ERR_INPUT_UNSUPPORTED_MEDIA', undefined, { cause: err });
    default:
      if ((fe.statusCode ?? 500) < 500)
        return new EdgewardError('ERR_INPUT_MALFORMED', fe.message, { cause: err });
      return new EdgewardError('ERR_INTERNAL', undefined, { cause: err });
  }
}
