-- What listing a product on Allegro needs (product.upserted): Allegro's shapes, as jsonb.
-- description: {"sections": [...]} (StandardizedDescription); images: ["https://...", ...];
-- parameters: [{"id"?, "name"?, "values": [...]}]; safety_information: {"type": "TEXT",
-- "description"}; tax_settings: {"rates": [{"rate", "countryCode"}], "subject", "exemption"}.
ALTER TABLE products
    ADD COLUMN description             jsonb,
    ADD COLUMN images                  jsonb,
    ADD COLUMN parameters              jsonb,
    ADD COLUMN category_id             text,
    ADD COLUMN responsible_producer_id text,
    ADD COLUMN safety_information      jsonb,
    ADD COLUMN tax_settings            jsonb;
