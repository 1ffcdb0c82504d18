package delivery

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestCheckEgress(t *testing.T) {
	loop := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	ten := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}
	meta := []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32")}
	tests := []struct {
		ip           string
		allowPrivate bool
		allow        []netip.Prefix
		wantKind     string // "" = allowed
	}{
		{"93.184.216.34", false, nil, ""},
		{"8.8.8.8", false, nil, ""},
		{"2606:4700::1111", false, nil, ""},
		{"127.0.0.1", false, nil, "loopback address"},
		{"127.9.9.9", false, nil, "loopback address"},
		{"::1", false, nil, "loopback address"},
		{"::ffff:127.0.0.1", false, nil, "loopback address"},
		{"10.0.0.5", false, nil, "private address"},
		{"172.16.0.1", false, nil, "private address"},
		{"172.31.255.255", false, nil, "private address"},
		{"172.32.0.1", false, nil, ""},
		{"192.168.1.1", false, nil, "private address"},
		{"fd12:3456::1", false, nil, "private address"},
		{"169.254.10.1", false, nil, "link-local address"},
		{"fe80::1", false, nil, "link-local address"},
		{"fe80::1%eth0", false, nil, "link-local address"},
		{"100.64.0.1", false, nil, "shared (CGNAT) address"},
		{"100.127.255.254", false, nil, "shared (CGNAT) address"},
		{"0.0.0.0", false, nil, "unspecified address"},
		{"::", false, nil, "unspecified address"},
		{"224.0.0.1", false, nil, "multicast address"},
		{"ff02::1", false, nil, "multicast address"},
		{"255.255.255.255", false, nil, "broadcast address"},
		{"64:ff9b::7f00:1", false, nil, "loopback address"},
		{"64:ff9b::808:808", false, nil, ""},
		{"169.254.169.254", false, nil, "cloud metadata address"},
		{"fd00:ec2::254", false, nil, "cloud metadata address"},
		// allow_private opens private ranges, never the metadata address.
		{"127.0.0.1", true, nil, ""},
		{"10.0.0.5", true, nil, ""},
		{"169.254.10.1", true, nil, ""},
		{"169.254.169.254", true, nil, "cloud metadata address"},
		{"::ffff:169.254.169.254", true, nil, "cloud metadata address"},
		{"100.100.100.200", true, nil, "cloud metadata address"},
		{"fd00:ec2::254", true, nil, "cloud metadata address"},
		{"fe80::a9fe:a9fe", true, nil, "cloud metadata address"},
		{"fd20:ce::254", true, nil, "cloud metadata address"},
		// Allow lists open exactly what they cover.
		{"127.0.0.1", false, loop, ""},
		{"::ffff:127.0.0.1", false, loop, ""},
		{"::1", false, loop, "loopback address"},
		{"10.1.2.3", false, ten, ""},
		{"10.2.0.1", false, ten, "private address"},
		{"169.254.169.254", false, loop, "cloud metadata address"},
		{"169.254.169.254", false, meta, ""},
	}
	for _, tt := range tests {
		err := CheckEgress(netip.MustParseAddr(tt.ip), tt.allowPrivate, tt.allow)
		if tt.wantKind == "" {
			if err != nil {
				t.Errorf("CheckEgress(%s, %v, %v) = %v, want allowed", tt.ip, tt.allowPrivate, tt.allow, err)
			}
			continue
		}
		var ee *EgressError
		if !errors.As(err, &ee) || !errors.Is(err, ErrEgressRefused) {
			t.Errorf("CheckEgress(%s, %v, %v) = %v, want refusal (%s)", tt.ip, tt.allowPrivate, tt.allow, err, tt.wantKind)
			continue
		}
		if ee.Kind != tt.wantKind {
			t.Errorf("CheckEgress(%s): kind %q, want %q", tt.ip, ee.Kind, tt.wantKind)
		}
	}
	if err := CheckEgress(netip.Addr{}, true, nil); !errors.Is(err, ErrEgressRefused) {
		t.Errorf("invalid address: %v, want refusal", err)
	}
}

func TestEgressErrorMessage(t *testing.T) {
	err := CheckEgress(netip.MustParseAddr("127.0.0.1"), false, nil)
	want := "egress to 127.0.0.1 refused: loopback address; allow it with egress.allow or allow_private"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	err = CheckEgress(netip.MustParseAddr("169.254.169.254"), true, nil)
	want = "egress to 169.254.169.254 refused: cloud metadata address; allow it with egress.allow"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// TestEgressTransport dials through the guarded transport: the check runs
// on the resolved address, so "localhost" is refused like 127.0.0.1.
func TestEgressTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	tests := []struct {
		name    string
		guard   egressGuard
		url     string
		refused bool
	}{
		{"loopback refused", egressGuard{}, srv.URL, true},
		{"localhost name refused after resolving", egressGuard{}, "http://localhost:" + port, true},
		{"allowed by prefix", egressGuard{allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, srv.URL, false},
		{"allowed by allow_private", egressGuard{allowPrivate: true}, srv.URL, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &http.Client{Transport: newTransport(tt.guard, 1), Timeout: 5 * time.Second}
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, tt.url, nil)
			resp, err := c.Do(req)
			if resp != nil {
				resp.Body.Close()
			}
			if tt.refused {
				if !errors.Is(err, ErrEgressRefused) || !strings.Contains(err.Error(), "refused: loopback address") {
					t.Fatalf("got %v, want an egress refusal", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want success", err)
			}
		})
	}
	// The metadata address is refused before any packet leaves: the dial
	// fails in the guard even with allow_private.
	g := egressGuard{allowPrivate: true, allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	c := &http.Client{Transport: newTransport(g, 1), Timeout: 5 * time.Second}
	resp, err := c.Get("http://169.254.169.254/latest/meta-data/")
	if resp != nil {
		resp.Body.Close()
	}
	if !errors.Is(err, ErrEgressRefused) {
		t.Fatalf("metadata: got %v, want an egress refusal", err)
	}
}

// CheckEgressHost decides as the guarded dialer does: literals as they
// are, names by the addresses they resolve to ("localhost" is loopback);
// a name that does not resolve is not an egress refusal.
func TestCheckEgressHost(t *testing.T) {
	loop := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	meta := []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32")}
	tests := []struct {
		host         string
		allowPrivate bool
		allow        []netip.Prefix
		wantKind     string // "" = allowed
	}{
		{"203.0.113.9", false, nil, ""},
		{"127.0.0.1", false, nil, "loopback address"},
		{"localhost", false, nil, "loopback address"},
		{"::1", false, nil, "loopback address"},
		{"fe80::1%eth0", false, nil, "link-local address"},
		{"10.20.30.40", false, nil, "private address"},
		{"169.254.169.254", false, nil, "cloud metadata address"},
		{"localhost", true, nil, ""},
		{"localhost", false, loop, ""},
		{"169.254.169.254", true, loop, "cloud metadata address"},
		{"169.254.169.254", false, meta, ""},
	}
	for _, tt := range tests {
		err := CheckEgressHost(context.Background(), nil, tt.host, tt.allowPrivate, tt.allow)
		if tt.wantKind == "" {
			if err != nil {
				t.Errorf("CheckEgressHost(%s, %v, %v) = %v, want allowed", tt.host, tt.allowPrivate, tt.allow, err)
			}
			continue
		}
		var ee *EgressError
		if !errors.As(err, &ee) || ee.Kind != tt.wantKind {
			t.Errorf("CheckEgressHost(%s, %v, %v) = %v, want a refusal (%s)", tt.host, tt.allowPrivate, tt.allow, err, tt.wantKind)
		}
	}
	err := CheckEgressHost(context.Background(), nil, "hooks.invalid", false, nil)
	if err == nil || errors.Is(err, ErrEgressRefused) {
		t.Errorf("a name that does not resolve: %v, want the resolver's error", err)
	}
}
