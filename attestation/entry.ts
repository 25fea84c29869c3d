// What the registry knows of one attestation method: its name, its CA side, its device side, and
// the options that configure the device side on the command line and in an agent's configuration.
import type { AttestationPolicy } from '../policies/index.js';
import type { AttestationMethod, Prover } from './method.js';
import type { TokenRecord } from './token/method.js';

/** What the CA hands every method's factory. */
export interface MethodServerDeps {
  /** The CA's join tokens, by hash. */
  readonly tokens: (hash: string) => Promise<TokenRecord | undefined>;
  /** The CA's attestation policy, when it runs with one. */
  readonly policy: AttestationPolicy | undefined;
}

/** What a prover factory gets: the option values (by flag name), the usage line for errors, progress. */
export interface ProverRequest {
  readonly options: Readonly<Record<string, string | undefined>>;
  readonly usage: string;
  readonly print?: ((line: string) => void) | undefined;
}

export interface MethodEntry {
  readonly name: string;
  /** As the method's AttestationMethod says: whether a renewal proves the hardware again. */
  readonly reattestOnRenewal: boolean;
  /** Whether its prover signs the identity it enrolls (it needs `--id`; `renew` reads it from the folder). */
  readonly signsIdentity: boolean;
  /**
   * The command-line flags its prover reads (each takes a string), with the key under `enroll` in
   * an agent's configuration where one may give it there.
   */
  readonly options: Readonly<Record<string, { readonly config?: string }>>;
  /** Its part of the usage lines: the flags (`--tcti TCTI`) and the agent's `enroll` section. */
  readonly usage: { readonly flags: string; readonly config: string };
  /** The CA side, or undefined when this CA's configuration does not run it. */
  server(deps: MethodServerDeps): AttestationMethod | undefined;
  /** The device side; a UsageError names what is missing. */
  prover(request: ProverRequest): Prover;
}
