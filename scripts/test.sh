#!/usr/bin/env bash
# Runs vitest (arguments pass through) and closes with one summary line for CI.
mkdir -p test-artifacts
npx vitest run --reporter=default --reporter=json --outputFile.json=test-artifacts/vitest.json "$@"
status=$?
node scripts/test-summary.mjs test-artifacts/vitest.json || status=1
exit $status
