package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// errChunked is returned for a chunked response, which the gateway never
// sends for its JSON answers.
var errChunked = errors.New("chunked responses are not supported")

// conn is one keep-alive HTTP/1.1 connection that posts and reads answers
// one at a time. It is deliberately minimal: the load generator shares the
// machine's cores with the gateway, and net/http's client costs several
// times more CPU per request than writing the bytes and reading a status
// line and a Content-Length body.
type conn struct {
	addr string
	head []byte // "POST path HTTP/1.1\r\nHost: ...\r\nContent-Type: ...\r\nContent-Length: "
	nc   net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	body []byte // the last answer's body, valid until the next post
}

// newConn prepares a connection to addr posting to path with contentType;
// it dials on the first post.
func newConn(addr, path, contentType string) *conn {
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: ", path, addr, contentType)
	return &conn{addr: addr, head: []byte(head)}
}

func (c *conn) dial() error {
	nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("dial %s: %w", c.addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c.nc = nc
	c.r = bufio.NewReaderSize(nc, 16<<10)
	c.w = bufio.NewWriterSize(nc, 16<<10)
	return nil
}

// close drops the connection; the next post dials again.
func (c *conn) close() {
	if c.nc != nil {
		_ = c.nc.Close()
		c.nc = nil
	}
}

// post sends body and returns the answer's status. On any error the
// connection is closed, so the next post starts on a fresh one.
func (c *conn) post(body []byte) (int, error) {
	if c.nc == nil {
		if err := c.dial(); err != nil {
			return 0, err
		}
	}
	status, err := c.roundTrip(body)
	if err != nil {
		c.close()
	}
	return status, err
}

func (c *conn) roundTrip(body []byte) (int, error) {
	_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	var num [20]byte
	c.w.Write(c.head)
	c.w.Write(strconv.AppendInt(num[:0], int64(len(body)), 10))
	c.w.WriteString("\r\n\r\n")
	c.w.Write(body)
	if err := c.w.Flush(); err != nil {
		return 0, fmt.Errorf("write request: %w", err)
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, fmt.Errorf("read status line: %w", err)
	}
	// "HTTP/1.1 202 Accepted\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length, closeAfter := -1, false
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, fmt.Errorf("read header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")) && !bytes.EqualFold(value, []byte("identity")):
			return 0, errChunked
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			closeAfter = true
		}
	}
	if length < 0 {
		return 0, fmt.Errorf("answer without Content-Length")
	}
	if cap(c.body) < length {
		c.body = make([]byte, length)
	}
	c.body = c.body[:length]
	if _, err := io.ReadFull(c.r, c.body); err != nil {
		return 0, fmt.Errorf("read body: %w", err)
	}
	if closeAfter {
		c.close()
	}
	return status, nil
}
