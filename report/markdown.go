package report

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Markdown text for the job summary (GitHub's flavour of CommonMark). Everything that
// comes from a run (test names, output, paths) passes through one of these: none of it can
// open a link, an HTML tag, a table cell or a block of its own.

// mdText is s as literal inline text on one line: every ASCII punctuation character is
// backslash-escaped (CommonMark lets any be), line breaks and other control characters
// become spaces, and s is cut to limit runes (0: no limit) with "…".
func mdText(s string, limit int) string {
	s = oneLineOf(s, limit)
	var b strings.Builder
	for _, r := range s {
		if r < utf8.RuneSelf && unicode.IsPunct(r) || r < utf8.RuneSelf && unicode.IsSymbol(r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mdCode is s as a code span on one line, cut to limit runes (0: no limit): its fence is
// one backtick longer than the longest run of backticks in s, and it is padded with a
// space where s starts or ends with a backtick or a space (CommonMark strips one of each).
// In a table cell, use mdCellCode. An empty s gives "".
func mdCode(s string, limit int) string {
	s = oneLineOf(s, limit)
	if s == "" {
		return ""
	}
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") || strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// mdCellCode is s as a code span in a table cell. GitHub splits a row at every pipe not
// escaped with a backslash, code spans included, and then drops the backslash of each
// escaped pipe: a pipe becomes "\|" in the span. A backslash before a pipe cannot be said
// in a code span in a cell, so text with one is escaped text (mdText) instead.
func mdCellCode(s string, limit int) string {
	s = oneLineOf(s, limit)
	if strings.Contains(s, `\|`) {
		return mdText(s, 0)
	}
	return strings.ReplaceAll(mdCode(s, 0), "|", `\|`)
}

// mdFence is lines as a fenced code block: its fence is longer than any run of backticks
// in them (at least three), so no line can close it. Control characters other than tab
// become spaces; each line is cut to maxWidth runes.
func mdFence(lines []string, maxWidth int) string {
	clean := make([]string, len(lines))
	longest := 0
	for i, l := range lines {
		l = cutRunes(strings.Map(func(r rune) rune {
			if r != '\t' && unicode.IsControl(r) {
				return ' '
			}
			return r
		}, strings.ToValidUTF8(l, "\uFFFD")), maxWidth)
		clean[i] = l
		run := 0
		for j := 0; j < len(l); j++ {
			if l[j] == '`' {
				run++
				longest = max(longest, run)
			} else {
				run = 0
			}
		}
	}
	fence := strings.Repeat("`", max(3, longest+1))
	return fence + "text\n" + strings.Join(clean, "\n") + "\n" + fence + "\n"
}

// oneLineOf is s with line breaks and other control characters as spaces, invalid UTF-8
// replaced, trimmed, and cut to limit runes (0: no limit).
func oneLineOf(s string, limit int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return cutRunes(strings.TrimSpace(s), limit)
}

// cutRunes cuts s to max runes, the last being "…"; max 0 is no limit.
func cutRunes(s string, limit int) string {
	if limit <= 0 || utf8.RuneCountInString(s) <= limit {
		return s
	}
	n := 0
	for i := range s {
		if n == limit-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
