// CloudFront Function (cloudfront-js-2.0, viewer request) of every path the distribution does
// not serve: a 404 from the edge, before any cache lookup or origin request. no-store keeps the
// response headers policy's year-long Cache-Control off it.
function handler(event) {
  return {
    statusCode: 404,
    statusDescription: "Not Found",
    headers: {
      "cache-control": { value: "no-store" },
    },
  };
}
