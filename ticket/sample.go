package ticket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Token flags of MIT's GSS sample protocol (src/appl/gss-sample/gss-misc.h),
// spoken by gss-client/gss-server, kservice and kclient request: every token on
// the wire is flags (1 byte) || length (4 bytes, big-endian) || token.
const (
	SampleNoop        byte = 0x01
	SampleContext     byte = 0x02
	SampleData        byte = 0x04
	SampleMIC         byte = 0x08
	SampleContextNext byte = 0x10
	SampleWrapped     byte = 0x20
	SampleEncrypted   byte = 0x40
	SampleSendMIC     byte = 0x80
)

// ErrSampleTokenTooLong reports a sample-protocol token over the reader's cap.
var ErrSampleTokenTooLong = errors.New("ticket: sample protocol token too long")

// ReadSampleToken reads one sample-protocol token. A length above max is
// refused before any of the token is read. A clean end of stream before the
// header is io.EOF; one inside a token is io.ErrUnexpectedEOF.
func ReadSampleToken(r io.Reader, max int) (flags byte, token []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if uint64(n) > uint64(max) {
		return hdr[0], nil, fmt.Errorf("%w: %d bytes (max %d)", ErrSampleTokenTooLong, n, max)
	}
	token = make([]byte, n)
	if _, err := io.ReadFull(r, token); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return hdr[0], token, nil
}

// WriteSampleToken writes one sample-protocol token in a single write.
func WriteSampleToken(w io.Writer, flags byte, token []byte) error {
	b := make([]byte, 5, 5+len(token))
	b[0] = flags
	binary.BigEndian.PutUint32(b[1:], uint32(len(token)))
	_, err := w.Write(append(b, token...))
	return err
}
