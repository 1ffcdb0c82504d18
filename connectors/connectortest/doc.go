// Package connectortest owns the conformance suite that every shipped
// connector file (configs/connectors/*.yaml) must pass. It is a test helper:
// its functions take a *testing.T and fail it; nothing in the gateway imports
// it.
//
// # Basics
//
// A Suite names one connector file, the development secret its ${ENV}
// default sets, a Signer that signs requests the way the platform does, and
// three kinds of cases:
//
//   - Case: one webhook body (a platform's published fixture or a payload
//     assembled from its documentation). Run checks that the request signed
//     with the connector's secret verifies; that a tampered body, a wrong
//     secret and, for timestamped schemes, a stale or future timestamp are
//     refused with verify.ErrUnauthorized; that the body validates against the
//     connector's payload schema; that a webhook POST is never taken for a
//     handshake; that the body maps to exactly the events of the golden file
//     <GoldenDir>/<connector>/<case>.json (rewritten when Suite.Update is
//     set), and that those events use Hookline's vocabulary (see below); that
//     a redelivery of the same body (signed again later, with the platform's
//     retry headers) has the original's dedupe key; and that different cases
//     have different dedupe keys.
//   - HandshakeCase: a verification handshake (Meta's GET hub.challenge,
//     Slack's url_verification POST, which must verify first) and the answer
//     the platform expects.
//   - ActionCase: an event.Update rendered through the connector's outbound
//     section, authorized and sent to a loopback httptest server that the
//     connector's base URL environment variable points at; Run checks the
//     method, path, query, headers and body the server received and that the
//     action counts the platform's answer as success.
//
// # Vocabulary
//
// Unless Suite.AnyEventType is set, every event's type must be entity.verb
// with the entity part one of Entities, its entity one of Entities, its actor
// type customer, agent, system or empty (never gateway, which marks
// Hookline's own echoes), and the normalized value fields (NormalizedFields:
// status, priority, ...) lower-case words without spaces.
//
// # Example
//
//	func TestCatalogue(t *testing.T) {
//		connectortest.Run(t, connectortest.Suite{
//			ConfigPath: "../../configs/connectors/slack.yaml",
//			Secret:     "dev-insecure-slack-signing-secret",
//			Sign:       connectortest.SignSlack,
//			GoldenDir:  "../testdata/conformance",
//			Cases: []connectortest.Case{
//				{Name: "message", Payload: "../../testdata/fixtures/slack-event-callback-message.json"},
//			},
//		})
//	}
//
// # Caveats
//
// Signers compute signatures independently of package verify, from the
// platforms' published descriptions, so that a verifier bug cannot hide behind
// a signer with the same bug; the verify package's own tests check the
// published known-answer vectors.
package connectortest
