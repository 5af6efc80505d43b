// Worker-thread entry of mixflow when it runs from its TypeScript sources: register tsx's
// loader in this thread (a worker does not inherit a loader registered with tsx's API),
// then run the worker loop. Bundled builds put a bundle of ./main.ts under this same name
// next to the bundle instead (see test/helpers/bundle.ts).
import { register } from "tsx/esm/api";

register();
await import("./main.ts");
