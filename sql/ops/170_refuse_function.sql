-- No rows: mca_refuse(reason) raises SQLSTATE MCA01 with `reason` as its message. The ledger's
-- conditional upserts call it when a cap or budget has no room, so the refusal aborts the
-- transaction on the server and the whole allow attempt (BEGIN ... COMMIT) can be sent as one
-- pipelined batch: nothing is committed unless every check passed.
CREATE FUNCTION mca_refuse(reason text) RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'MCA01', MESSAGE = reason;
END
$$;
