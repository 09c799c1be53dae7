package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// MasterKey seals long-term keys at rest with AES-256-GCM. The principal name is
// the additional data, so a sealed key blob moved to another record fails to open.
type MasterKey struct {
	aead cipher.AEAD
}

const masterKeyHeader = "kerbkit master key v1"

// ErrMasterKey reports a master key file that is missing, malformed or does not
// match the database.
var ErrMasterKey = errors.New("store: master key")

// NewMasterKey makes a master key from 32 bytes.
func NewMasterKey(raw []byte) (*MasterKey, error) {
	if len(raw) != 32 {
		return nil, fmt.Errorf("%w: want 32 bytes, got %d", ErrMasterKey, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMasterKey, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMasterKey, err)
	}
	return &MasterKey{aead: aead}, nil
}

// CreateMasterKeyFile writes a new random master key to path with mode 0600. It
// refuses to overwrite an existing file: losing a master key loses every key
// sealed under it.
func CreateMasterKeyFile(path string) (*MasterKey, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMasterKey, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMasterKey, err)
	}
	content := masterKeyHeader + "\n" + base64.StdEncoding.EncodeToString(raw) + "\n"
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("%w: writing %s: %w", ErrMasterKey, path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("%w: writing %s: %w", ErrMasterKey, path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("%w: writing %s: %w", ErrMasterKey, path, err)
	}
	return NewMasterKey(raw)
}

// LoadMasterKeyFile reads a master key written by CreateMasterKeyFile. It refuses a
// file that others can read.
func LoadMasterKeyFile(path string) (*MasterKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMasterKey, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is readable by others (mode %v); chmod 600 it", ErrMasterKey, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMasterKey, err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != masterKeyHeader {
		return nil, fmt.Errorf("%w: %s is not a kerbkit master key file", ErrMasterKey, path)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(lines[1]))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: bad encoding", ErrMasterKey, path)
	}
	return NewMasterKey(raw)
}

// Seal encrypts plaintext bound to the additional data ad (a principal name).
func (m *MasterKey) Seal(plaintext []byte, ad string) ([]byte, error) {
	nonce := make([]byte, m.aead.NonceSize(), m.aead.NonceSize()+len(plaintext)+m.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMasterKey, err)
	}
	return m.aead.Seal(nonce, nonce, plaintext, []byte(ad)), nil
}

// Open decrypts what Seal made for the same ad.
func (m *MasterKey) Open(sealed []byte, ad string) ([]byte, error) {
	ns := m.aead.NonceSize()
	if len(sealed) < ns+m.aead.Overhead() {
		return nil, fmt.Errorf("%w: sealed data too short", ErrMasterKey)
	}
	pt, err := m.aead.Open(nil, sealed[:ns], sealed[ns:], []byte(ad))
	if err != nil {
		return nil, fmt.Errorf("%w: sealed data does not open (wrong master key or tampered record)", ErrMasterKey)
	}
	return pt, nil
}
