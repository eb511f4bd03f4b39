// The Khronos glTF Validator on the .glb files named on the command line (tests/test_glb.py):
// prints one JSON object {file: report} with every issue (no cap), exit 0 once all reports are
// written (the test reads the error counts from them), 2 when a file cannot be read.
import { readFileSync } from 'node:fs';
import validator from 'gltf-validator';

const reports = {};
for (const file of process.argv.slice(2)) {
  let bytes;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (err) {
    console.error(`${file}: ${err.message}`);
    process.exit(2);
  }
  reports[file] = await validator.validateBytes(bytes, {
    uri: file, format: 'glb', maxIssues: 0, writeTimestamp: false,
  });
}
process.stdout.write(JSON.stringify(reports));
