// What the webchat drivers (drive.mjs, lb.mjs) share with the test program
// that runs them (tests/check/webchat*.cpp): a question is a "? <question>"
// line on stdout, its answer one line on stdin.  And their checks: each
// prints "ok - ..." or throws "FAILED: ...".
import readline from 'node:readline';

const answers = [];
const waiting = [];
let gone = false;  // the test program stopped answering
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const w = waiting.shift();
  if (w) w.resolve(line); else answers.push(line);
});
rl.on('close', () => {
  gone = true;
  for (const w of waiting.splice(0)) w.reject(new Error('FAILED: the test program went away'));
});

export function ask(question) {
  process.stdout.write(`? ${question}\n`);
  return new Promise((resolve, reject) => {
    if (answers.length) resolve(answers.shift());
    else if (gone) reject(new Error('FAILED: the test program went away'));
    else waiting.push({ resolve, reject });
  });
}
export const askNumber = async (q) => Number(await ask(q));

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function check(cond, what, detail = '') {
  if (!cond) throw new Error(`FAILED: ${what}${detail ? ` (${detail})` : ''}`);
  console.log(`ok - ${what}${detail ? ` (${detail})` : ''}`);
}

// Polls `fn` every 50 ms until it returns something truthy (returned), or
// throws after `ms`.
export async function waitFor(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`FAILED: timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}
