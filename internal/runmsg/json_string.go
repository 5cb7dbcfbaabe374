package runmsg

import (
	"io"
	"unicode/utf16"
	"unicode/utf8"
)

// str reads the string literal at p.i: a string, or a jsString when it has a lone
// surrogate escape.
func (p *jsonParser) str() (any, error) {
	s, js, err := p.strText()
	switch {
	case err != nil:
		return nil, err
	case js != nil:
		return jsString{s: s, js: js}, nil
	}
	return s, nil
}

// strText reads the string literal at p.i: its value, and when it has a lone surrogate
// escape what JSON.stringify writes for it (js; nil otherwise). Keys take it as it is, so
// no key is boxed in an interface only to be unboxed again.
func (p *jsonParser) strText() (s string, js []byte, err error) {
	raw, start := p.raw, p.i
	i := start + 1
	plain, surrogate := true, false // plain: the bytes are the value; surrogate: a \ud800-\udfff escape
	for {
		if i >= len(raw) {
			return "", nil, io.ErrUnexpectedEOF
		}
		c := raw[i]
		switch {
		case c == '"':
			p.i = i + 1
			if plain {
				return p.text[start+1 : i], nil, nil
			}
			s := p.unescape(raw[start+1 : i])
			if surrogate && !p.values { // values hold the string as encoding/json reads it
				if js, lone := jsText(raw[start : i+1]); lone {
					return s, js, nil
				}
			}
			return s, nil, nil
		case c == '\\':
			plain = false
			if i+1 >= len(raw) {
				return "", nil, io.ErrUnexpectedEOF
			}
			switch raw[i+1] {
			case '"', '\\', 'b', 'f', 'n', 'r', 't':
				i += 2
			case '/':
				p.stringified = false // JSON.stringify writes a plain /
				i += 2
			case 'u':
				r, err := p.hex4(i + 2)
				if err != nil {
					return "", nil, err
				}
				surrogate = surrogate || utf16.IsSurrogate(r)
				if !stringifiedEscape(raw[i+2:i+6], r) {
					p.stringified = false
				}
				i += 6
			default:
				return "", nil, p.syntaxError(i+1, "in string escape code")
			}
		case c < 0x20:
			return "", nil, p.syntaxError(i, "in string literal")
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				plain, p.stringified = false, false // the value holds U+FFFD instead
			}
			i += size
		}
	}
}

// stringifiedEscape reports whether the four hex digits of a \u escape of r are what
// JSON.stringify writes for r: it writes \u00xx, in lower case, only for a control character
// without a one-letter escape, and the character itself for any other.
func stringifiedEscape(hex []byte, r rune) bool {
	if r >= 0x20 || r == '\b' || r == '\f' || r == '\n' || r == '\r' || r == '\t' {
		return false
	}
	return hex[0] == '0' && hex[1] == '0' && hex[2] == hexDigits[r>>4] && hex[3] == hexDigits[r&0xf]
}

// hex4 reads the four hex digits of a \u escape at raw[at:].
func (p *jsonParser) hex4(at int) (rune, error) {
	var r rune
	for j := at; j < at+4; j++ {
		if j >= len(p.raw) {
			return 0, io.ErrUnexpectedEOF
		}
		d, ok := hexDigit(p.raw[j])
		if !ok {
			return 0, p.syntaxError(j, "in \\u hexadecimal character escape")
		}
		r = r<<4 | d
	}
	return r, nil
}

func hexDigit(c byte) (rune, bool) {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0'), true
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10), true
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10), true
	}
	return 0, false
}

// unescape is the value of a checked string literal's contents as encoding/json gives it:
// escapes decoded, a surrogate pair joined, a lone surrogate and each invalid UTF-8 byte
// U+FFFD.
func (p *jsonParser) unescape(lit []byte) string {
	b := p.buf[:0]
	for i := 0; i < len(lit); {
		c := lit[i]
		switch {
		case c == '\\':
			switch e := lit[i+1]; e {
			case 'u':
				r := unhex4(lit[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(lit) && lit[i] == '\\' && lit[i+1] == 'u' {
						if pair := utf16.DecodeRune(r, unhex4(lit[i+2:])); pair != utf8.RuneError {
							b = utf8.AppendRune(b, pair)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				b = append(b, byte(escapedChar(e)))
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(lit[i:])
			b = utf8.AppendRune(b, r) // an invalid byte: r is U+FFFD, size 1
			i += size
		}
	}
	p.buf, p.bufUsed = b, max(p.bufUsed, len(b))
	return string(b)
}

// escapedChar is the character a one-letter escape (\n, \", ...) stands for.
func escapedChar(e byte) rune {
	switch e {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return rune(e) // \" \\ \/
}

// unhex4 is the value of four hex digits str has already checked.
func unhex4(h []byte) rune {
	var r rune
	for _, c := range h[:4] {
		d, _ := hexDigit(c)
		r = r<<4 | d
	}
	return r
}
