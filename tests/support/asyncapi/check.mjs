// Parse and validate an AsyncAPI document with the official parser (@asyncapi/parser), then
// print, as JSON on stdout, each channel's address and its messages' resolved payload schemas
// (tests/central.rs validates real payloads against them). Exit 1 with the diagnostics if the
// document is not valid.
import { Parser, fromFile } from '@asyncapi/parser';

const path = process.argv[2];
if (!path) {
  console.error('usage: node check.mjs asyncapi.yaml');
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, path).parse();
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of diagnostics) {
  console.error(`${['error', 'warning', 'info', 'hint'][d.severity]} ${d.code}: ${d.message} at ${d.path.join('/')}`);
}
if (!document || errors.length > 0) {
  console.error(`${path}: not a valid AsyncAPI document (${errors.length} errors)`);
  process.exit(1);
}
const out = {
  version: document.version(),
  channels: document.channels().all().map((ch) => ({
    id: ch.id(),
    address: ch.address(),
    messages: ch.messages().all().map((m) => ({ id: m.id(), payload: m.payload()?.json() })),
  })),
  operations: document.operations().all().map((op) => ({
    id: op.id(),
    action: op.action(),
    channel: op.channels().all().map((c) => c.id()),
  })),
};
process.stdout.write(JSON.stringify(out));
