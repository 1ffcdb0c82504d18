package delivery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// blockedRange is one address range the egress guard refuses by default.
type blockedRange struct {
	prefix netip.Prefix
	kind   string
}

// metadataAddrs are cloud instance metadata endpoints: refused even when a
// connector allows private targets, unless an egress allow prefix covers them.
var metadataAddrs = [...]netip.Addr{
	netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, OpenStack, ...
	netip.MustParseAddr("fd00:ec2::254"),   // AWS IPv6
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("fe80::a9fe:a9fe"), // OpenStack IPv6
	netip.MustParseAddr("fd20:ce::254"),    // GCP IPv6
}

// blockedRanges is the immutable table of refused ranges, most specific kinds
// first where ranges nest.
var blockedRanges = [...]blockedRange{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified address"},
	{netip.MustParsePrefix("::/128"), "unspecified address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback address"},
	{netip.MustParsePrefix("::1/128"), "loopback address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private address"},
	{netip.MustParsePrefix("fc00::/7"), "private address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local address"},
	{netip.MustParsePrefix("fe80::/10"), "link-local address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT) address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast address"},
	{netip.MustParsePrefix("ff00::/8"), "multicast address"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved address"},
}

// nat64 is the well-known NAT64 prefix; its last 32 bits are an IPv4 address.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// CheckEgress reports whether Hookline may connect to ip. It refuses
// loopback, private (RFC 1918, fc00::/7), link-local (169.254/16,
// fe80::/10), shared CGNAT (100.64/10), unspecified, multicast, broadcast and
// reserved addresses, unless allowPrivate is set or a prefix of allow covers
// ip. Cloud metadata addresses (169.254.169.254, fd00:ec2::254,
// 100.100.100.200) are opened only by a prefix of allow, never by
// allowPrivate. IPv4-mapped IPv6 addresses and NAT64 addresses are checked
// as the IPv4 address they carry. The error is an *EgressError.
func CheckEgress(ip netip.Addr, allowPrivate bool, allow []netip.Prefix) error {
	if !ip.IsValid() {
		return &EgressError{Addr: ip, Kind: "invalid address"}
	}
	ip = ip.WithZone("").Unmap()
	for _, p := range allow {
		if p.Contains(ip) {
			return nil
		}
	}
	check := ip
	if nat64.Contains(ip) {
		b := ip.As16()
		check = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		for _, p := range allow {
			if p.Contains(check) {
				return nil
			}
		}
	}
	for _, m := range metadataAddrs {
		if check == m {
			return &EgressError{Addr: ip, Kind: "cloud metadata address", Metadata: true}
		}
	}
	if allowPrivate {
		return nil
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(check) {
			return &EgressError{Addr: ip, Kind: r.kind}
		}
	}
	return nil
}

// CheckEgressHost applies CheckEgress to a host as a URL names it: an IP
// literal (IPv6 without brackets, with or without a zone) is checked as it
// is; a name is resolved with resolver (nil: net.DefaultResolver) and is
// refused when every address it resolves to is refused, since the dialer
// tries the next address after a refused one. The error is then the
// *EgressError of the first address. A name that does not resolve gives
// the resolver's error, which does not wrap ErrEgressRefused. The check at
// connect time stays the one that counts: DNS answers can change.
func CheckEgressHost(ctx context.Context, resolver *net.Resolver, host string, allowPrivate bool, allow []netip.Prefix) error {
	if ip, err := netip.ParseAddr(host); err == nil {
		return CheckEgress(ip, allowPrivate, allow)
	}
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	ips, err := resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("egress check of %s: %w", host, err)
	}
	var first error
	for _, ip := range ips {
		err := CheckEgress(ip, allowPrivate, allow)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		return fmt.Errorf("egress check of %s: no address: %w", host, ErrEgressRefused)
	}
	return first
}

// egressGuard checks every address a connector's dialer connects to.
type egressGuard struct {
	allowPrivate bool
	allow        []netip.Prefix
}

// control is a net.Dialer ControlContext: it runs after name resolution,
// on the very address the socket is about to connect to.
func (g egressGuard) control(_ context.Context, network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("egress check of %s %q: %w", network, address, ErrEgressRefused)
	}
	return CheckEgress(ap.Addr(), g.allowPrivate, g.allow)
}

// dialer returns a dialer that refuses what the guard refuses.
func (g egressGuard) dialer() *net.Dialer {
	return &net.Dialer{
		Timeout:        10 * time.Second,
		KeepAlive:      30 * time.Second,
		ControlContext: g.control,
	}
}
