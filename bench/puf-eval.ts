// `npm run bench:puf`: the fuzzy extractor's evaluation (failure rate over 3 x 10^6 simulated reads
// per bit error rate, analytic bound, Hamming distances, reconstruction time). Arguments are
// those of `edgeward puf eval`, e.g. `node dist/bench/puf-eval.js --reads 1000000`.
import { runPufCommand } from '../attestation/puf/index.js';

process.exitCode = await runPufCommand(['eval', ...process.argv.slice(2)]);
