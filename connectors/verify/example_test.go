package verify_test

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/hookline/hookline/connectors/verify"
)

// GitHub's documented example: secret "It's a Secret to Everybody", body
// "Hello, World!".
func ExampleNew() {
	v, err := verify.New(verify.Config{Scheme: "github", Secret: "It's a Secret to Everybody"})
	if err != nil {
		fmt.Println(err)
		return
	}
	r := &verify.Request{Method: http.MethodPost, Header: http.Header{}, Body: []byte("Hello, World!")}
	r.Header.Set("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	fmt.Println(v.Verify(r))

	r.Body = []byte("Hello, World?")
	err = v.Verify(r)
	fmt.Println(err, errors.Is(err, verify.ErrUnauthorized))
	// Output:
	// <nil>
	// signature does not match true
}

func ExampleNew_unknownScheme() {
	_, err := verify.New(verify.Config{Scheme: "standard-webhook", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	fmt.Println(err)
	// Output:
	// unknown verify scheme "standard-webhook"; did you mean "standard-webhooks"?
}

func ExampleDecodeForm() {
	out, _, err := verify.DecodeForm([]byte("From=%2B14158675309&MediaUrl=a&Body=hi&MediaUrl=b"))
	fmt.Println(string(out), err)
	// Output:
	// {"From":"+14158675309","MediaUrl":["a","b"],"Body":"hi"} <nil>
}

func ExampleContentKind() {
	fmt.Println(verify.ContentKind("application/json; charset=utf-8"))
	fmt.Println(verify.ContentKind("application/x-www-form-urlencoded"))
	fmt.Printf("%q\n", verify.ContentKind("text/plain"))
	// Output:
	// json
	// form
	// ""
}
