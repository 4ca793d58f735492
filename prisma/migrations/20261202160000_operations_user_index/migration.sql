-- Nothing looks operations up by user; one index less to maintain on every balance change.
DROP INDEX "operations_user_id_idx";
