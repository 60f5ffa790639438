-- One customer's last decisions, newest first (their stories are loaded one by one).
SELECT decision_id FROM decisions WHERE user_id = %(user_id)s ORDER BY finished_at DESC LIMIT %(limit)s
