package chains

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/sha3"
)

// Errors returned (wrapped) by ValidAddress; test for them with errors.Is.
var (
	// ErrNotHexAddress means the string is not 0x followed by 40 hex digits.
	ErrNotHexAddress = errors.New("not a 20-byte hex address")
	// ErrBadChecksum means a mixed-case address does not match its EIP-55 checksum.
	ErrBadChecksum = errors.New("fails the EIP-55 checksum")
)

// IsHexAddress reports whether s is "0x" followed by exactly 40 hex digits (any case).
func IsHexAddress(s string) bool {
	if len(s) != 42 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return false
	}
	for i := 2; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// ChecksumAddress returns the EIP-55 mixed-case form of a 20-byte hex address, with a "0x"
// prefix. The input may be in any case, with or without a 0x/0X prefix. It returns "" when
// the input is not 40 hex digits.
func ChecksumAddress(addr string) string {
	h := addr
	if len(h) >= 2 && h[0] == '0' && (h[1] == 'x' || h[1] == 'X') {
		h = h[2:]
	}
	if len(h) != 40 {
		return ""
	}
	for i := 0; i < len(h); i++ {
		if !isHex(h[i]) {
			return ""
		}
	}
	lower := strings.ToLower(h)
	k := sha3.NewLegacyKeccak256()
	k.Write([]byte(lower))
	sum := k.Sum(nil)
	hexSum := hex.EncodeToString(sum)
	out := make([]byte, 0, 42)
	out = append(out, '0', 'x')
	for i := 0; i < len(lower); i++ {
		c := lower[i]
		// A letter is upper-cased when the matching nibble of the hash is >= 8.
		if c >= 'a' && c <= 'f' && hexSum[i] >= '8' {
			c -= 'a' - 'A'
		}
		out = append(out, c)
	}
	return string(out)
}

// ValidAddress checks that s is an EVM address: "0x" followed by 40 hex digits. An all-lower
// or all-upper address carries no checksum and is accepted; a mixed-case one must match its
// EIP-55 checksum. The error wraps ErrNotHexAddress or ErrBadChecksum.
func ValidAddress(s string) error {
	if !IsHexAddress(s) {
		return fmt.Errorf("%q is %w", s, ErrNotHexAddress)
	}
	if s[1] == 'X' {
		// EIP-55 is defined for the "0x" prefix only.
		return fmt.Errorf("%q is %w: the prefix is 0x, lower case", s, ErrNotHexAddress)
	}
	digits := s[2:]
	if digits == strings.ToLower(digits) || digits == strings.ToUpper(digits) {
		return nil
	}
	if want := ChecksumAddress(s); want != s {
		return fmt.Errorf("%q %w (the checksummed form is %s)", s, ErrBadChecksum, want)
	}
	return nil
}
