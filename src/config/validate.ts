/**
 * Turning zod issues into one message a person can act on, naming the field.
 */
import type { z } from "zod";
import { invalid } from "../errors.js";

/** Format zod issues as "field.path: message; ..." (at most 5 issues). */
export function formatIssues(issues: readonly z.ZodIssue[], prefix = ""): string {
  return issues
    .slice(0, 5)
    .map((i) => {
      const path = [prefix, ...i.path.map(String)].filter((p) => p !== "").join(".");
      return `${path || "(root)"}: ${i.message}`;
    })
    .join("; ");
}

/** Parse with a schema or throw INVALID_ARGUMENT naming the field(s). */
export function parseOrThrow<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, value: unknown, what: string, prefix = ""): T {
  const r = schema.safeParse(value);
  if (!r.success) throw invalid(`${what}: ${formatIssues(r.error.issues, prefix)}`);
  return r.data;
}

/** Parse a JSON text or throw INVALID_ARGUMENT with the parser's position. */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw invalid(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}
