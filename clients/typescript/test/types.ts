// Compile-time checks: `npm run build` fails if these stop holding, so the
// generated types can't quietly degrade (a code union turning into string).
import type { ApiError, ErrorCode, paths } from "../src/index.js";

export function describe(err: ApiError): string {
  switch (err.code) {
    case "rate-limited":
    case "quota-exceeded":
      return `later: ${err.retryAfter ?? "?"} s`;
    case "not-found":
      return "gone";
    // @ts-expect-error: not one of the API's codes
    case "no-such-code":
      return "impossible";
    default:
      return err.code;
  }
}

// Each status lists only its own codes: a 404 of GET /v1/images/{id} is not-found, never unauthorized.
type NotFound = paths["/v1/images/{id}"]["get"]["responses"][404]["content"]["application/problem+json"]["code"];
export const notFound: NotFound = "not-found";
// @ts-expect-error: unauthorized is the 401's code, not the 404's
export const wrong: NotFound = "unauthorized";

export const every: ErrorCode[] = ["bad-request", "service-unavailable"];
