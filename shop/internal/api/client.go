package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// Client calls another shop service over HTTP. Base is "http://host:port"; HTTP is typically
// a *http.Client whose transport balances over the replicas behind a Docker network alias.
type Client struct {
	Base string
	HTTP *http.Client
}

// Call is one request to another service.
type Call struct {
	Method, Path string
	UserID       int64  // sent as X-User-ID when > 0
	RequestID    string // propagated as X-Request-ID when set
	Token        string // sent as "Authorization: Bearer" when set
	Body         any    // JSON-encoded when not nil
}

// Do sends c and decodes a 2xx answer into out (when not nil). A non-2xx answer comes back as
// an *Error with its status (and its code when the body is an ErrorBody).
func (c *Client) Do(ctx context.Context, call Call, out any) error {
	method, path, body := call.Method, call.Path, call.Body
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("api: encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if call.UserID > 0 {
		req.Header.Set(HeaderUserID, strconv.FormatInt(call.UserID, 10))
	}
	if call.RequestID != "" {
		req.Header.Set(HeaderRequestID, call.RequestID)
	}
	if call.Token != "" {
		req.Header.Set("Authorization", "Bearer "+call.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("api: %s %s: read: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Code != "" {
			return &Error{Status: resp.StatusCode, Code: eb.Code, Msg: eb.Error}
		}
		return &Error{Status: resp.StatusCode, Code: "upstream", Msg: fmt.Sprintf("%s %s: %s", method, path, resp.Status)}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("api: %s %s: decode: %w", method, path, err)
		}
	}
	return nil
}
