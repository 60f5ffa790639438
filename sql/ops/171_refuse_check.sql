-- Structured refusals: a refusing check raises SQLSTATE MCA02 with its index among the attempt's
-- checks in the DETAIL field (the client reads err.diag.message_detail, never the message text);
-- the shadow stop raises MCA03. Either aborts the transaction server-side, like mca_refuse.
CREATE FUNCTION mca_refuse_check(check_index integer) RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'MCA02', MESSAGE = 'check refused', DETAIL = check_index::text;
END
$$;

CREATE FUNCTION mca_shadow_stop() RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'MCA03', MESSAGE = 'shadow mode: decided, undone';
END
$$;
