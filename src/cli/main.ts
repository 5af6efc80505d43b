#!/usr/bin/env node
/**
 * The `mixflow` command line: one subcommand per job, each in its own file.
 */
import { reportCommand } from "./report.js";
import { serveCommand } from "./serve.js";
import { replayCommand } from "./replay.js";
import { journalCommand } from "./journal.js";
import { STRATEGIES } from "../../strategies/index.js";

const HELP = `mixflow — training-time data mixing server

Commands:
  serve        start the gRPC server          (mixflow serve --help)
  report       draw a run from its journal    (mixflow report --help)
  replay       export, re-serve, transfer, simulate or verify a recorded run (mixflow replay --help)
  journal      check or repair a journal      (mixflow journal --help)
  strategies   list the mixing strategies

Run "mixflow <command> --help" for a command's options.
`;

type Command = (argv: string[]) => Promise<void>;

const COMMANDS: Record<string, Command> = {
  serve: serveCommand,
  report: reportCommand,
  replay: replayCommand,
  journal: journalCommand,
  strategies: async () => {
    for (const s of STRATEGIES.values()) process.stdout.write(`${s.name.padEnd(14)} ${s.summary}\n`);
  },
};

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "--help" || cmd === "-h" || cmd === "help") {
    process.stdout.write(HELP);
    return;
  }
  const fn = COMMANDS[cmd];
  if (!fn) {
    process.stderr.write(`mixflow: unknown command "${cmd}"\n\n${HELP}`);
    process.exitCode = 2;
    return;
  }
  await fn(rest);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`mixflow: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});

