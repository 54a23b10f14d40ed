package client

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// SMQ message types (SMQ spec §1.4). The client keeps its own tiny codec so
// that it does not depend on the broker package.
const (
	msgInit         = 1
	msgConnect      = 2
	msgConnack      = 3
	msgSubscribe    = 4
	msgSuback       = 5
	msgCreate       = 6
	msgCreateAck    = 7
	msgPublish      = 8
	msgUnsubscribe  = 9
	msgDisconnect   = 11
	msgPing         = 12
	msgPong         = 13
	msgObserve      = 14
	msgUnobserve    = 15
	msgChange       = 16
	msgCreateSub    = 17
	msgCreateSubAck = 18
	msgPubFrag      = 19
)

// MaxPayload is the largest publish payload SMQ allows (SMQ spec §1.3).
const MaxPayload = 0xFFF0

// ServerETID is the default ETID of the broker's server-side client.
const ServerETID = 1

var (
	// ErrClosed is returned after Close and passed to OnClose for it.
	ErrClosed = errors.New("smq client: closed")
	// ErrNotConnected is returned while the client has no connection
	// (between a connection loss and a successful reconnect).
	ErrNotConnected = errors.New("smq client: not connected")
	// ErrTooLarge is returned for payloads over MaxPayload.
	ErrTooLarge = errors.New("smq client: payload larger than 0xFFF0 bytes")
	// ErrDenied is returned when the broker refuses a Subscribe, Create or
	// CreateSub (status 1 in the ack).
	ErrDenied = errors.New("smq client: denied by broker")
	// ErrProtocol wraps every malformed or unexpected message from the broker.
	ErrProtocol = errors.New("smq client: protocol error")
	// ErrUnknownTopic is returned by calls that need a name already resolved.
	ErrUnknownTopic = errors.New("smq client: unknown topic")
)

// ConnackError is a refused connection: the Connack return code (1..6, SMQ
// spec §1.5) and the broker's reason text.
type ConnackError struct {
	Code   byte
	Reason string
}

func (e *ConnackError) Error() string {
	return fmt.Sprintf("smq client: connection refused (code %d): %s", e.Code, e.Reason)
}

// DisconnectError is a Disconnect message from the broker, e.g. reason
// "reconnect" when another connection took over the UID. The client never
// reconnects after it.
type DisconnectError struct {
	Reason string
}

func (e *DisconnectError) Error() string {
	return "smq client: disconnected by broker: " + e.Reason
}

// appendPubHeader appends [typ][tid][ptid][subtid] (Publish / PubFrag).
func appendPubHeader(b []byte, typ byte, tid, ptid, subtid uint32) []byte {
	b = append(b, typ)
	b = binary.BigEndian.AppendUint32(b, tid)
	b = binary.BigEndian.AppendUint32(b, ptid)
	return binary.BigEndian.AppendUint32(b, subtid)
}

// appendConnect encodes Connect v1, or v2 with a zero max-size like the C
// client (SMQ spec §1.5). uid and cred must be at most 255 bytes.
func appendConnect(b []byte, v2 bool, uid, cred []byte, info string) []byte {
	b = append(b, msgConnect)
	if v2 {
		b = append(b, 2, 0, 0)
	} else {
		b = append(b, 1)
	}
	b = append(b, byte(len(uid)))
	b = append(b, uid...)
	b = append(b, byte(len(cred)))
	b = append(b, cred...)
	return append(b, info...)
}

// parseInit decodes Init (SMQ spec §1.5): version must be 1.
func parseInit(m []byte) (seed uint32, ip string, err error) {
	if len(m) < 6 || m[0] != msgInit {
		return 0, "", fmt.Errorf("smq client: expected Init: %w", ErrProtocol)
	}
	if m[1] != 1 {
		return 0, "", fmt.Errorf("smq client: Init version %d: %w", m[1], ErrProtocol)
	}
	return binary.BigEndian.Uint32(m[2:6]), string(m[6:]), nil
}

// parseConnack decodes Connack: the ETID, or a *ConnackError.
func parseConnack(m []byte) (uint32, error) {
	if len(m) < 6 || m[0] != msgConnack {
		return 0, fmt.Errorf("smq client: expected Connack: %w", ErrProtocol)
	}
	if m[1] != 0 {
		return 0, &ConnackError{Code: m[1], Reason: string(m[6:])}
	}
	return binary.BigEndian.Uint32(m[2:6]), nil
}
