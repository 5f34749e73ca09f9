package user_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/ares-sre/ares/shop/internal/api"
	"github.com/ares-sre/ares/shop/internal/testenv"
)

func TestSignupLoginLogout(t *testing.T) {
	s := testenv.Start(t)
	body := `{"email":"Ada@Example.com","password":"correct horse","name":"Ada"}`
	code, _, data := testenv.Call(t, "POST", s.User+"/api/users/signup", body)
	if code != http.StatusCreated {
		t.Fatalf("signup: %d %s", code, data)
	}
	var signup api.Session
	testenv.Decode(t, data, &signup)
	if signup.Token == "" || signup.User.Email != "ada@example.com" || signup.User.ID == 0 {
		t.Fatalf("signup session: %+v", signup)
	}
	var hash string
	if err := s.DB.QueryRow(context.Background(), `SELECT password_hash FROM users WHERE id = $1`, signup.User.ID).Scan(&hash); err != nil || len(hash) < 50 || hash[:4] != "$2a$" {
		t.Errorf("password stored as %q (err %v), want a bcrypt hash", hash, err)
	}

	code, _, data = testenv.Call(t, "POST", s.User+"/api/users/signup", body)
	if code != http.StatusConflict {
		t.Errorf("second signup: %d %s, want 409", code, data)
	}
	testenv.CheckError(t, data, "email_taken")

	code, _, data = testenv.Call(t, "POST", s.User+"/api/users/login", `{"email":"ada@example.com","password":"wrong horse"}`)
	if code != http.StatusUnauthorized {
		t.Errorf("login with a wrong password: %d %s", code, data)
	}
	testenv.CheckError(t, data, "invalid_credentials")

	code, _, data = testenv.Call(t, "POST", s.User+"/api/users/login", `{"email":"ADA@example.com","password":"correct horse"}`)
	if code != http.StatusOK {
		t.Fatalf("login: %d %s", code, data)
	}
	var login api.Session
	testenv.Decode(t, data, &login)
	if login.Token == signup.Token || login.User.ID != signup.User.ID {
		t.Errorf("login session %+v, signup %+v", login, signup)
	}

	for _, tok := range []string{signup.Token, login.Token} {
		code, _, data = testenv.Call(t, "GET", s.User+"/api/users/session", "", "Authorization", "Bearer "+tok)
		if code != http.StatusOK {
			t.Fatalf("session: %d %s", code, data)
		}
	}

	code, _, _ = testenv.Call(t, "POST", s.User+"/api/users/logout", "", "Authorization", "Bearer "+login.Token)
	if code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	code, _, data = testenv.Call(t, "GET", s.User+"/api/users/session", "", "Authorization", "Bearer "+login.Token)
	if code != http.StatusUnauthorized {
		t.Errorf("session after logout: %d %s", code, data)
	}
	testenv.CheckError(t, data, "unauthenticated")
	if code, _, _ = testenv.Call(t, "GET", s.User+"/api/users/session", "", "Authorization", "Bearer "+signup.Token); code != http.StatusOK {
		t.Errorf("the other session ended too: %d", code)
	}
}

func TestSessionsExpire(t *testing.T) {
	s := testenv.Start(t)
	sess := testenv.User(t, s.User)
	ctx := context.Background()
	keys, err := s.Redis.Keys(ctx, s.Keys.Prefix+"session:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("session keys %v, %v", keys, err)
	}
	if ttl := s.Redis.TTL(ctx, keys[0]).Val(); ttl <= 0 {
		t.Errorf("session TTL %v, want an expiry", ttl)
	}
	s.Redis.PExpire(ctx, keys[0], time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	if code, _, _ := testenv.Call(t, "GET", s.User+"/api/users/session", "", "Authorization", "Bearer "+sess.Token); code != http.StatusUnauthorized {
		t.Errorf("expired session answered %d", code)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	s := testenv.Start(t)
	for _, tc := range []struct {
		name, path, body, code string
		status                 int
	}{
		{"malformed JSON", "signup", `{"email":`, "invalid_json", 400},
		{"not an object", "signup", `[1,2]`, "invalid_json", 400},
		{"unknown field", "signup", `{"email":"a@b.co","password":"12345678","admin":true}`, "invalid_json", 400},
		{"trailing data", "signup", `{"email":"a@b.co","password":"12345678"} {}`, "invalid_json", 400},
		{"missing password", "signup", `{"email":"a@b.co"}`, "missing_field", 400},
		{"missing email", "signup", `{"password":"12345678"}`, "missing_field", 400},
		{"bad email", "signup", `{"email":"not-an-email","password":"12345678"}`, "invalid_email", 400},
		{"short password", "signup", `{"email":"a@b.co","password":"short"}`, "invalid_password", 400},
		{"login missing fields", "login", `{}`, "missing_field", 400},
		{"login unknown user", "login", `{"email":"nobody@b.co","password":"12345678"}`, "invalid_credentials", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, data := testenv.Call(t, "POST", s.User+"/api/users/"+tc.path, tc.body)
			if code != tc.status {
				t.Errorf("status %d, want %d (%s)", code, tc.status, data)
			}
			testenv.CheckError(t, data, tc.code)
		})
	}
	var n int
	if err := s.DB.QueryRow(context.Background(), `SELECT count(*) FROM users`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d users after bad input (err %v), want 0", n, err)
	}
	if keys := s.Redis.Keys(context.Background(), s.Keys.Prefix+"*").Val(); len(keys) != 0 {
		t.Errorf("redis keys after bad input: %v", keys)
	}
}
