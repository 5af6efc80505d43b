/**
 * grpc.health.v1.Health: "" (the whole server) and "mixflow.v1.Mixer" are SERVING while
 * the server runs and NOT_SERVING once shutdown begins, so load balancers and trainers'
 * readiness checks stop sending work before streams are ended.
 */
import * as grpc from "@grpc/grpc-js";

type Status = "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

export class HealthService {
  private status: "SERVING" | "NOT_SERVING" = "SERVING";
  private readonly watchers = new Set<() => void>();
  static readonly SERVICES = ["", "mixflow.v1.Mixer"];

  setServing(serving: boolean): void {
    this.status = serving ? "SERVING" : "NOT_SERVING";
    for (const w of this.watchers) w();
  }

  private statusOf(service: string): Status {
    return HealthService.SERVICES.includes(service) ? this.status : "SERVICE_UNKNOWN";
  }

  handlers(): grpc.UntypedServiceImplementation {
    return {
      Check: (call: grpc.ServerUnaryCall<{ service?: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const s = this.statusOf(call.request.service ?? "");
        if (s === "SERVICE_UNKNOWN") cb({ code: grpc.status.NOT_FOUND, details: `unknown service "${call.request.service}"` });
        else cb(null, { status: s });
      },
      List: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        cb(null, { statuses: Object.fromEntries(HealthService.SERVICES.map((s) => [s, { status: this.status }])) });
      },
      Watch: (call: grpc.ServerWritableStream<{ service?: string }, unknown>) => {
        const service = call.request.service ?? "";
        let last: Status | null = null;
        const send = (): void => {
          const s = this.statusOf(service);
          if (s !== last) call.write({ status: s });
          last = s;
        };
        send();
        this.watchers.add(send);
        const done = (): void => {
          this.watchers.delete(send);
        };
        call.on("cancelled", done);
        call.on("close", done);
      },
    };
  }
}
