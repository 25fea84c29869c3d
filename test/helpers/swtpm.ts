// The software TPM fixture lives with the TPM code (the demo and the benchmarks use it too).
export * from '../../attestation/tpm/index.js';
