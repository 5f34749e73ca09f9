package logs

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// maxMsg caps the message kept as last_error, in bytes.
const maxMsg = 512

// jsonLine holds the keys parseLine reads; encoding/json matches them case-insensitively.
type jsonLine struct {
	Level    json.RawMessage `json:"level"`
	Lvl      json.RawMessage `json:"lvl"`
	Severity json.RawMessage `json:"severity"`
	Msg      json.RawMessage `json:"msg"`
	Message  json.RawMessage `json:"message"`
}

// parseLine classifies one log line (without its newline). A JSON object is an error line when
// its level (the first of the keys level, lvl, severity; any case) is one of error, err, fatal,
// panic, critical (any case), or a number of at least 50 (bunyan/pino levels); its message is
// msg, else message, else the whole line. Any other line is an error line when it contains
// " ERROR ", starts with "ERROR " or contains "level=error" (any case); its message is the
// line. msg is at most maxMsg bytes of valid UTF-8, and "" unless isErr.
func parseLine(line []byte) (isErr bool, msg string) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return false, ""
	}
	if line[0] == '{' {
		var j jsonLine
		if json.Unmarshal(line, &j) == nil {
			if !errorLevel(cmpLevel(j)) {
				return false, ""
			}
			for _, m := range []json.RawMessage{j.Msg, j.Message} {
				if len(m) == 0 || string(m) == "null" {
					continue
				}
				var s string
				if json.Unmarshal(m, &s) == nil {
					return true, clip(s)
				}
				return true, clip(string(m))
			}
			return true, clip(string(line))
		}
	}
	if bytes.Contains(line, []byte(" ERROR ")) || bytes.HasPrefix(line, []byte("ERROR ")) || containsFold(line, "level=error") {
		return true, clip(string(line))
	}
	return false, ""
}

func cmpLevel(j jsonLine) json.RawMessage {
	for _, l := range []json.RawMessage{j.Level, j.Lvl, j.Severity} {
		if len(l) > 0 && string(l) != "null" {
			return l
		}
	}
	return nil
}

// errorLevel reports whether a JSON level value means an error.
func errorLevel(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return false
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "error", "err", "fatal", "panic", "critical":
			return true
		}
		return false
	}
	var n float64
	return json.Unmarshal(raw, &n) == nil && n >= 50
}

// containsFold reports whether s contains the ASCII lower-case word, ignoring ASCII case.
func containsFold(s []byte, word string) bool {
	for i := 0; i+len(word) <= len(s); i++ {
		j := 0
		for j < len(word) && lower(s[i+j]) == word[j] {
			j++
		}
		if j == len(word) {
			return true
		}
	}
	return false
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// clip cuts s to at most maxMsg bytes at a rune boundary and repairs invalid UTF-8.
func clip(s string) string {
	if len(s) > maxMsg {
		cut := maxMsg
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
		if len(s) > maxMsg { // each invalid byte may have grown to three
			return clip(s)
		}
	}
	return s
}
