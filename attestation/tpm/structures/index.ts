// TPM 2.0 wire structures: parsers that check every length and refuse trailing bytes.
export * from './constants.js';
export * from './reader.js';
export * from './public.js';
export * from './attest.js';
export * from './signature.js';
