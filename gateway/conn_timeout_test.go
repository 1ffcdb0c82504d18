package gateway

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

// closedWithin reports whether the server closes c within wait: a read
// that ends in anything but our own deadline (EOF, a reset, or an answer
// followed by the close).
func closedWithin(c net.Conn, wait time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(wait))
	var b [512]byte
	for {
		_, err := c.Read(b[:])
		var ne net.Error
		switch {
		case err == nil:
			continue // an error answer before the close
		case errors.As(err, &ne) && ne.Timeout():
			return false
		default:
			return true
		}
	}
}

// A connection that sends nothing is closed at the read timeout, as one
// that sent part of a request is: with ReduceMemoryUsage, fasthttp waits
// for a new connection's first byte with no deadline of its own, and each
// silent socket (a load balancer's pre-opened pool, a hostile client) held
// a descriptor and a goroutine forever. A keep-alive connection between
// requests still waits for the idle timeout. Timeouts are scaled down on
// the real app.
func TestSilentConnectionsTimeOut(t *testing.T) {
	const readTimeout, idleTimeout = 300 * time.Millisecond, 1500 * time.Millisecond
	ts := startServerWith(t, copyConfigs(t), nil, nil, func(s *Server) {
		s.app.Server().ReadTimeout = readTimeout
		s.app.Server().IdleTimeout = idleTimeout
	})
	if !ts.app.Server().ReduceMemoryUsage {
		t.Fatal("the test is about ReduceMemoryUsage, which is off")
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ts.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	silent, partial, keepAlive := dial(), dial(), dial()
	partial.Write([]byte("P")) // the start of a request, then nothing
	keepAlive.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(keepAlive), nil)
	if err != nil || resp.StatusCode != 200 || resp.Close {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	}
	resp.Body.Close()
	idleFrom := time.Now()

	if !closedWithin(partial, 3*readTimeout) {
		t.Fatal("control: a connection that sent one byte is open after 3x the read timeout")
	}
	if !closedWithin(silent, readTimeout) { // 4x the read timeout since it opened
		t.Fatalf("a connection that sent nothing is open after 4x the read timeout (open connections: %d)", ts.app.Server().GetOpenConnectionsCount())
	}
	if closedWithin(keepAlive, idleTimeout/2-time.Since(idleFrom)) {
		t.Fatal("an idle keep-alive connection was closed before half its idle timeout")
	}
	if !closedWithin(keepAlive, idleTimeout) {
		t.Fatal("an idle keep-alive connection is open after 1.5x its idle timeout")
	}
}
