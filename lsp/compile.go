package lsp

import (
	"bytes"
	"fmt"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/scheduler"
)

// chunkHeader starts every translated page. It has no newline so that line N
// of the page is line N of the chunk.
const chunkHeader = "local _ENV,pathname,io,page,app=...;"

// maxConcat bounds the operands of one _emit(a..b..) call: gopher-lua puts
// every operand of a concatenation in its own register, and a function has at
// most 250 of them.
const maxConcat = 48

// Translate turns the source of an .lsp page into Lua source.
//
// Recognised tags (cosocket-api.md §4.1):
//
//	<?lsp code ?>     code pasted verbatim (control flow may span blocks)
//	<?lsp= expr ?>    _emit(tostring(expr))
//	<?= expr ?>       the same; an extension, BAS does not have it
//
// Static text is emitted byte for byte whatever it contains: it is written as
// long-bracket strings whose level does not occur in the text, with carriage
// returns and leading newlines (which Lua's lexer would normalise or drop) as
// escaped short strings. The translation keeps the page's line structure, so
// Lua errors name the page's own line numbers. Whitespace-only text after the
// last tag is dropped, and a "<? ... ?>" pair inside code does not end the
// block, as in BAS. name is only used in error messages.
// Translate is a pure function, safe for concurrent use.
func Translate(name string, src []byte) (string, error) {
	var b strings.Builder
	b.Grow(len(src) + len(src)/4 + 64)
	b.WriteString(chunkHeader)
	owed := 0 // newlines the chunk has that the page has not had yet
	line := 1
	text := src
	for len(text) > 0 {
		start := bytes.Index(text, []byte("<?"))
		isTag := false
		var tagLen int
		expr := false
		for start >= 0 {
			rest := text[start:]
			switch {
			case bytes.HasPrefix(rest, []byte("<?lsp=")):
				isTag, tagLen, expr = true, 6, true
			case bytes.HasPrefix(rest, []byte("<?lsp")):
				isTag, tagLen = true, 5
			case bytes.HasPrefix(rest, []byte("<?=")):
				isTag, tagLen, expr = true, 3, true
			}
			if isTag {
				break
			}
			// "<?" that is not ours (an XML prolog, say) is static text.
			next := bytes.Index(text[start+2:], []byte("<?"))
			if next < 0 {
				start = -1
			} else {
				start += 2 + next
			}
		}
		if start < 0 {
			// Trailing text: dropped when it is only whitespace after a tag.
			if len(bytes.TrimSpace(text)) > 0 || len(text) == len(src) {
				owed = emitStatic(&b, text, owed)
			}
			break
		}
		if start > 0 {
			owed = emitStatic(&b, text[:start], owed)
			line += bytes.Count(text[:start], []byte("\n"))
		}
		body := text[start+tagLen:]
		end := closingTag(body)
		if end < 0 {
			return "", fmt.Errorf("%s:%d: unterminated %s tag", name, line, text[start:start+tagLen])
		}
		code := body[:end]
		if expr {
			b.WriteString(" _emit(tostring(")
			b.Write(code)
			b.WriteString("))")
		} else {
			b.WriteByte(' ')
			b.Write(code)
			// A "--" comment on the code's last line would swallow what
			// follows on the same chunk line: end the line, and pay the extra
			// newline back at the next newline of static text.
			last := code[bytes.LastIndexByte(code, '\n')+1:]
			if bytes.Contains(last, []byte("--")) {
				b.WriteByte('\n')
				owed++
			}
		}
		b.WriteByte(' ')
		line += bytes.Count(code, []byte("\n"))
		text = body[end+2:]
	}
	return b.String(), nil
}

// closingTag returns the index of the "?>" that ends a tag body, skipping
// nested "<? ... ?>" pairs inside the code (as BAS does), or -1.
func closingTag(body []byte) int {
	depth := 0
	for i := 0; i+1 < len(body); i++ {
		switch {
		case body[i] == '<' && body[i+1] == '?':
			depth++
			i++
		case body[i] == '?' && body[i+1] == '>':
			if depth == 0 {
				return i
			}
			depth--
			i++
		}
	}
	return -1
}

// emitStatic writes text as one or more _emit calls and returns the newlines
// still owed (see Translate).
func emitStatic(b *strings.Builder, text []byte, owed int) int {
	operands := 0
	open := func() {
		if operands == 0 {
			b.WriteString(" _emit(")
		} else {
			b.WriteString("..")
		}
		operands++
	}
	for len(text) > 0 {
		if operands == maxConcat {
			b.WriteString(")")
			operands = 0
		}
		c := text[0]
		if c == '\r' || c == '\n' {
			// Short string: \r escaped, \n as backslash-newline (which keeps
			// the line count), or as \n when a newline is owed.
			open()
			b.WriteByte('"')
			i := 0
			for ; i < len(text) && (text[i] == '\r' || text[i] == '\n'); i++ {
				switch {
				case text[i] == '\r':
					b.WriteString(`\r`)
				case owed > 0:
					b.WriteString(`\n`)
					owed--
				default:
					b.WriteString("\\\n")
				}
			}
			b.WriteByte('"')
			text = text[i:]
			continue
		}
		// Long bracket up to the next \r (or the next \n while a newline is
		// owed); it never starts with a newline.
		stop := bytes.IndexByte(text, '\r')
		if owed > 0 {
			if n := bytes.IndexByte(text, '\n'); n >= 0 && (stop < 0 || n < stop) {
				stop = n
			}
		}
		if stop < 0 {
			stop = len(text)
		}
		piece := text[:stop]
		level := longBracketLevel(piece)
		open()
		eq := strings.Repeat("=", level)
		b.WriteString("[" + eq + "[")
		b.Write(piece)
		b.WriteString("]" + eq + "]")
		text = text[stop:]
	}
	if operands > 0 {
		b.WriteString(")")
	}
	return owed
}

// longBracketLevel returns the smallest n such that "]" + n×"=" + "]" does not
// occur in s and s cannot end in a way that merges with the closing bracket.
func longBracketLevel(s []byte) int {
	for n := 0; ; n++ {
		closer := "]" + strings.Repeat("=", n)
		if !bytes.Contains(s, []byte(closer+"]")) && !bytes.HasSuffix(s, []byte(closer)) {
			return n
		}
	}
}

// CompilePage translates an .lsp page and compiles it to a function prototype.
// name becomes the chunk name, so errors read "name:line: message". Safe for
// concurrent use (no LState is involved).
func CompilePage(name string, src []byte) (*lua.FunctionProto, error) {
	code, err := Translate(name, src)
	if err != nil {
		return nil, err
	}
	return compileLua(name, code)
}

// compileLua parses and compiles Lua source without an LState, with the
// scheduler's rewrite that lets generic-for iterators park.
func compileLua(name, code string) (*lua.FunctionProto, error) {
	proto, err := scheduler.Compile(strings.NewReader(code), name)
	if err != nil {
		return nil, fmt.Errorf("%s", strings.TrimSpace(err.Error()))
	}
	return proto, nil
}
