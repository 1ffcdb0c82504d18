// Package verify owns the authentication of inbound webhooks and the decoding
// of their bodies. It is the part of connectors that answers "did this request
// really come from the platform?" before anything is stored.
//
// # Basics
//
// A connector file's `inbound.verify` block decodes into a Config; New turns it
// into a Verifier, refusing bad settings up front (unknown scheme with the
// nearest valid name, missing secret, unknown algorithm or encoding, a field
// that the scheme does not use). The gateway builds a Request from the exact
// raw body and headers and calls Verify: nil means authentic, anything else is
// an *Error whose Reason is a one-line text that is safe to log and to return
// to the caller (it never contains a secret, the expected signature, or the
// signature that was sent). Every *Error matches ErrUnauthorized with
// errors.Is.
//
// Schemes (see Schemes):
//
//   - hmac: HMAC(secret, body) in a configured header, sha1|sha256|sha512,
//     hex|base64, optional prefix such as "sha256=".
//   - github, meta: X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>.
//   - standard-webhooks: webhook-id, webhook-timestamp and webhook-signature
//     (or their svix-* aliases); signed content is id.timestamp.body; the key
//     is the base64 after "whsec_"; the header may list several "v1,<b64>".
//   - token: a shared secret in a header and/or a query parameter. When the
//     header is Authorization, a "Bearer " prefix is accepted.
//   - none: accepts everything (for platforms that cannot sign).
//   - zendesk: X-Zendesk-Webhook-Signature = base64(HMAC-SHA256(secret,
//     timestamp + body)) with the RFC 3339 X-Zendesk-Webhook-Signature-Timestamp.
//   - slack: X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:"+ts+":"+body)>
//     with the unix-seconds X-Slack-Request-Timestamp.
//   - twilio: X-Twilio-Signature = base64(HMAC-SHA1(auth token, URL + sorted
//     form key/value pairs)), or for JSON bodies a signed URL carrying the
//     body's SHA-256 in its bodySHA256 query parameter.
//
// Several secrets may be active at once (rotation): a request is authentic
// when any of them matches. All comparisons are constant-time. Verification
// fails closed: a missing or malformed header, an undecodable signature or a
// timestamp outside the tolerance (default 5m, both past and future) refuses
// the request.
//
// # Twilio URLs
//
// Twilio signs the URL it called. Behind a proxy that URL differs from the one
// the gateway sees, so public_url may name it: scheme, host, optional port and
// path, without a query. The request's own query string is always appended to
// it as received (proxies pass queries through, and Twilio adds bodySHA256 to
// the query per request); when Request.URL has no query, Request.Query is
// encoded instead. Without public_url the Request's URL is used as is. Like
// Twilio's SDKs, the URL is tried as given and also with the scheme's default
// port (:443 or :80) added when it has none, or with its port removed when it
// has one (Twilio's own SDK tests expect a signature made without the port to
// match a URL carrying :1234). Keys sort in byte order and a repeated form key
// contributes each of its values, sorted (duplicates kept). A non-empty body
// that is not form-encoded is refused unless the URL carries bodySHA256, so a
// URL-only signature cannot be replayed with a forged body.
//
// # Bodies
//
// ContentKind classifies a Content-Type as "json", "form" or unsupported, and
// DecodeForm turns an application/x-www-form-urlencoded body into the JSON
// object the mapping layer reads.
//
// # Caveats
//
// Request.Now is the clock used for timestamp windows; when it is zero the
// verifier reads time.Now. Request.Body must be the exact bytes received:
// re-encoding a JSON body breaks every signature.
package verify
