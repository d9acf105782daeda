-- accounts and orders
--
-- revision: sq05
-- down_revision: None
-- branch_labels: None
-- depends_on: None
-- create_date: 2026-12-02 12:17:52.137225
-- replaces: s01, s02, s03, s04, s05

-- alembic:upgrade
CREATE TABLE public.accounts (
    id bigint NOT NULL,
    name text NOT NULL,
    email text,
    CONSTRAINT accounts_pkey PRIMARY KEY (id)
);

CREATE TABLE public.orders (
    id bigint NOT NULL,
    account_id bigint NOT NULL,
    total numeric(12,2),
    CONSTRAINT orders_pkey PRIMARY KEY (id)
);

CREATE INDEX orders_account ON public.orders USING btree (account_id);
ALTER TABLE public.orders ADD CONSTRAINT orders_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts(id);

CREATE VIEW public.order_totals AS
 SELECT orders.account_id,
    sum(orders.total) AS total
   FROM orders
  GROUP BY orders.account_id;


-- alembic:downgrade
-- back to an empty database: drops everything the squash made
DROP VIEW public.order_totals;
ALTER TABLE public.orders DROP CONSTRAINT orders_account_id_fkey;
DROP TABLE public.accounts;
DROP TABLE public.orders;

