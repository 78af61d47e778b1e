/**
 * The errors that end the process with a given exit code (DESIGN.md section 4a: 0 success,
 * 1 operation failed, 2 usage error). Each carries a one-line message that names what
 * failed, with which value, and what to do, so that `main.ts` prints it as is.
 *
 * @module
 */

/** Longest message accepted: a message is one line an operator reads, not a dump. */
export const MESSAGE_CHARS_MAX = 1000;

function assertOneLine(message: string): void {
  if (message.length === 0 || message.length > MESSAGE_CHARS_MAX || /[\r\n]/.test(message)) {
    throw new Error(`error messages must be one non-empty line: ${JSON.stringify(message)}`);
  }
}

/** The command line or environment is invalid: the process exits with code 2. */
export class UsageError extends Error {
  override name = "UsageError";
  /** The exit code for a usage error. */
  readonly exitCode = 2;

  /** `message` must be one line naming the flag or variable, the value and the rule. */
  constructor(message: string) {
    assertOneLine(message);
    super(message);
  }
}

/** The node cannot start (port in use, data dir locked, bad key file): exit code 1. */
export class StartupError extends Error {
  override name = "StartupError";
  /** The exit code for a failed start. */
  readonly exitCode = 1;

  /** `message` must be one line naming what failed, with which value, and what to do. */
  constructor(message: string, options?: ErrorOptions) {
    assertOneLine(message);
    super(message, options);
  }
}

/**
 * `--help` was given: not a failure. The CLI prints `text` to stdout and exits with 0.
 * Thrown rather than returned so that `--help` wins over every other flag, valid or not.
 */
export class HelpRequested extends Error {
  override name = "HelpRequested";
  /** The exit code after printing help. */
  readonly exitCode = 0;
  /** The help text to print. */
  readonly text: string;

  /** `text` is the full, multi-line help of the command that was asked about. */
  constructor(text: string) {
    super("help requested");
    this.text = text;
  }
}

/**
 * The reason an operation failed, on one line, for quoting inside one of the messages
 * above: the error's message with line breaks folded into spaces.
 */
export function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s+/g, " ").trim();
}
