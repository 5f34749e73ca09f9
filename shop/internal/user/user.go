// Package user is the user service: sign-up and login with bcrypt password hashes in
// PostgreSQL, sessions in Redis with expiry, logout.
package user

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/ares-sre/ares/shop/internal/api"
	"github.com/ares-sre/ares/shop/internal/service"
	"github.com/ares-sre/ares/shop/internal/store"
)

// Service is the user service.
type Service struct {
	DB         *pgxpool.Pool
	Redis      *redis.Client
	Keys       store.Keys
	SessionTTL time.Duration
	BcryptCost int // bcrypt.DefaultCost when 0
	Log        *slog.Logger
}

// Routes adds the service's routes to mux.
//
//	POST /api/users/signup   {email, password, name} → 201 Session
//	POST /api/users/login    {email, password}       → 200 Session
//	POST /api/users/logout   Authorization: Bearer   → 204
//	GET  /api/users/session  Authorization: Bearer   → 200 User (what the gateway checks)
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/users/signup", service.Handle(s.Log, s.signup))
	mux.HandleFunc("POST /api/users/login", service.Handle(s.Log, s.login))
	mux.HandleFunc("POST /api/users/logout", service.Handle(s.Log, s.logout))
	mux.HandleFunc("GET /api/users/session", service.Handle(s.Log, s.session))
}

// Ready reports whether PostgreSQL and Redis answer.
func (s *Service) Ready(ctx context.Context) error {
	return errors.Join(s.DB.Ping(ctx), s.Redis.Ping(ctx).Err())
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

func (c *credentials) validate(signup bool) error {
	c.Email = strings.ToLower(strings.TrimSpace(c.Email))
	c.Name = strings.TrimSpace(c.Name)
	if c.Email == "" || c.Password == "" {
		return api.Errorf(http.StatusBadRequest, "missing_field", "email and password are required")
	}
	if !signup {
		return nil
	}
	if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email || len(c.Email) > 254 {
		return api.Errorf(http.StatusBadRequest, "invalid_email", "email %q is not a valid address", c.Email)
	}
	if n := len(c.Password); n < 8 || n > 72 {
		return api.Errorf(http.StatusBadRequest, "invalid_password", "password must be 8 to 72 bytes long")
	}
	if c.Name == "" {
		c.Name, _, _ = strings.Cut(c.Email, "@")
	}
	if len(c.Name) > 100 {
		return api.Errorf(http.StatusBadRequest, "invalid_name", "name must be at most 100 bytes long")
	}
	return nil
}

func (s *Service) signup(w http.ResponseWriter, r *http.Request) error {
	var c credentials
	if err := api.DecodeJSON(w, r, &c); err != nil {
		return err
	}
	if err := c.validate(true); err != nil {
		return err
	}
	cost := s.BcryptCost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(c.Password), cost)
	if err != nil {
		return fmt.Errorf("user: hash: %w", err)
	}
	u := api.User{Email: c.Email, Name: c.Name}
	err = s.DB.QueryRow(r.Context(),
		`INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id`,
		c.Email, c.Name, string(hash)).Scan(&u.ID)
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23505" {
		return api.Errorf(http.StatusConflict, "email_taken", "an account with this email already exists")
	}
	if err != nil {
		return fmt.Errorf("user: insert: %w", err)
	}
	sess, err := s.newSession(r.Context(), u)
	if err != nil {
		return err
	}
	s.Log.Info("signed up", "user_id", u.ID, "request_id", r.Header.Get(api.HeaderRequestID))
	api.WriteJSON(w, http.StatusCreated, sess)
	return nil
}

func (s *Service) login(w http.ResponseWriter, r *http.Request) error {
	var c credentials
	if err := api.DecodeJSON(w, r, &c); err != nil {
		return err
	}
	if err := c.validate(false); err != nil {
		return err
	}
	var u api.User
	var hash string
	err := s.DB.QueryRow(r.Context(), `SELECT id, email, name, password_hash FROM users WHERE email = $1`, c.Email).
		Scan(&u.ID, &u.Email, &u.Name, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		// Compare anyway so that unknown emails take as long as wrong passwords.
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(c.Password))
		return errBadCredentials
	}
	if err != nil {
		return fmt.Errorf("user: select: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(c.Password)) != nil {
		return errBadCredentials
	}
	sess, err := s.newSession(r.Context(), u)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, sess)
	return nil
}

var (
	errBadCredentials = api.Errorf(http.StatusUnauthorized, "invalid_credentials", "wrong email or password")
	errNoSession      = api.Errorf(http.StatusUnauthorized, "unauthenticated", "no valid session")
	dummyHash, _      = bcrypt.GenerateFromPassword([]byte("not a real password"), bcrypt.MinCost)
)

func (s *Service) logout(w http.ResponseWriter, r *http.Request) error {
	token := BearerToken(r)
	if token == "" {
		return errNoSession
	}
	if err := s.Redis.Del(r.Context(), s.Keys.Session(hashToken(token))).Err(); err != nil {
		return fmt.Errorf("user: delete session: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) session(w http.ResponseWriter, r *http.Request) error {
	token := BearerToken(r)
	if token == "" {
		return errNoSession
	}
	data, err := s.Redis.Get(r.Context(), s.Keys.Session(hashToken(token))).Bytes()
	if errors.Is(err, redis.Nil) {
		return errNoSession
	}
	if err != nil {
		return fmt.Errorf("user: get session: %w", err)
	}
	var u api.User
	if err := json.Unmarshal(data, &u); err != nil {
		return fmt.Errorf("user: decode session: %w", err)
	}
	api.WriteJSON(w, http.StatusOK, u)
	return nil
}

// newSession stores a session for u under the hash of a fresh random token: a Redis dump
// does not reveal usable tokens.
func (s *Service) newSession(ctx context.Context, u api.User) (api.Session, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return api.Session{}, fmt.Errorf("user: token: %w", err)
	}
	token := hex.EncodeToString(b[:])
	data, err := json.Marshal(u)
	if err != nil {
		return api.Session{}, fmt.Errorf("user: encode session: %w", err)
	}
	if err := s.Redis.Set(ctx, s.Keys.Session(hashToken(token)), data, s.SessionTTL).Err(); err != nil {
		return api.Session{}, fmt.Errorf("user: store session: %w", err)
	}
	return api.Session{Token: token, User: u, ExpiresAt: time.Now().Add(s.SessionTTL).UTC()}, nil
}

func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// BearerToken returns the token of an "Authorization: Bearer <token>" header, or "".
func BearerToken(r *http.Request) string {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return strings.TrimSpace(v)
}
