CREATE TABLE IF NOT EXISTS users (
	id            bigserial PRIMARY KEY,
	email         text NOT NULL UNIQUE,
	name          text NOT NULL,
	password_hash text NOT NULL,
	created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS products (
	id          bigserial PRIMARY KEY,
	sku         text NOT NULL UNIQUE,
	name        text NOT NULL,
	description text NOT NULL DEFAULT '',
	price_cents bigint NOT NULL CHECK (price_cents >= 0),
	stock       bigint NOT NULL CHECK (stock >= 0),
	category    text NOT NULL DEFAULT '',
	updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS orders (
	id          bigserial PRIMARY KEY,
	user_id     bigint NOT NULL REFERENCES users (id),
	total_cents bigint NOT NULL CHECK (total_cents >= 0),
	status      text NOT NULL DEFAULT 'placed',
	created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS orders_user_id_idx ON orders (user_id, id DESC);

CREATE TABLE IF NOT EXISTS order_items (
	order_id    bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
	product_id  bigint NOT NULL REFERENCES products (id),
	name        text NOT NULL,
	quantity    bigint NOT NULL CHECK (quantity > 0),
	price_cents bigint NOT NULL CHECK (price_cents >= 0),
	PRIMARY KEY (order_id, product_id)
);
