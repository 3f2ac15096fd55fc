-- When the peer signed the registration a row holds (its iat). The projection replaces a row only
-- with a registration signed later, so replaying an older one cannot bring back an old key.
ALTER TABLE peers ADD COLUMN signed_at TIMESTAMPTZ;

-- Rows projected before this column existed: take iat from the registration JWS they hold. A row
-- whose JWS cannot be read keeps NULL, which any registration replaces.
DO $$
DECLARE
    row RECORD;
    payload TEXT;
BEGIN
    FOR row IN SELECT address, registration FROM peers LOOP
        BEGIN
            payload := translate(split_part(row.registration, '.', 2), '-_', '+/');
            payload := rpad(payload, ((length(payload) + 3) / 4) * 4, '=');
            UPDATE peers
               SET signed_at = to_timestamp(floor((convert_from(decode(payload, 'base64'), 'UTF8')::jsonb ->> 'iat')::double precision * 1000) / 1000)
             WHERE address = row.address;
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END LOOP;
END
$$;
