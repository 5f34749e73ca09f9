# ARES. `make help` lists the targets.
GO       ?= go
OPA      := $(GO) tool opa
PKGS     := ./...
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)

.PHONY: help build test test-go test-policies lint bench demo demo-down clean shop-images

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

build: ## build bin/ares (static)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ares ./cmd/ares

test: test-policies test-go ## policy tests, then Go unit and integration tests (needs scripts/services.sh)

test-go:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-policies: ## opa test over policies/ (the coverage floor is checked by go test ./tests)
	$(OPA) test policies/

lint: ## gofmt, go vet, opa fmt, opa check --strict, actionlint
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@out=$$($(OPA) fmt --list policies/); if [ -n "$$out" ]; then echo "opa fmt needed:"; echo "$$out"; exit 1; fi
	$(OPA) check --strict policies/
	$(GO) tool actionlint .github/workflows/*.yml

bench: ## benchmarks with ratios against their baselines
	bash scripts/bench.sh

demo: ## build, start the demo shop and ARES, crash a replica and watch ARES heal it (stays up)
	bash scripts/demo.sh up

demo-down: ## remove everything make demo started
	bash scripts/demo.sh down

clean: ## remove build output
	rm -rf bin dist

SHOP_SERVICES := gateway user product cart order
SHOP_TAG      ?= latest

shop-images: ## build the demo shop and ARES as static binaries in FROM-scratch images (no registry needed)
	@rm -rf dist/shop && mkdir -p dist/shop
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/shop/shop ./shop/cmd/shop
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/shop/ares ./cmd/ares
	cp -r policies dist/shop/policies
	chmod -R go-w dist/shop/policies # ARES refuses policies others can write (docs/security.md)
	cp -r deploy/shop/ares-etc dist/shop/ares-etc && mkdir -p dist/shop/ares-state # ARES's user and home
	@for s in $(SHOP_SERVICES); do \
		echo "docker build ares-shop-$$s:$(SHOP_TAG)"; \
		docker build -q -f deploy/shop/Dockerfile --build-arg SERVICE=$$s -t ares-shop-$$s:$(SHOP_TAG) \
			dist/shop >dist/shop/build.log 2>&1 || { cat dist/shop/build.log; exit 1; }; \
	done
	@echo "docker build ares:$(SHOP_TAG)"
	@docker build -q -f deploy/shop/ares.Dockerfile -t ares:$(SHOP_TAG) dist/shop >dist/shop/build.log 2>&1 || \
		{ cat dist/shop/build.log; exit 1; }
