/** The event schema moved to src/history/events.ts; this name stays for code written against it. */
export * from "../history/events.js";
