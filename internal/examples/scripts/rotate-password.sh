#!/bin/sh
# rotate_db_password: gets the decrypted secret input in $NEW_DB_PASS. Anything that prints
# it shows *** in Port's log: the agent masks secret inputs wherever they appear.
set -eu
echo "Rotating the password of database user ${DB_USER} (${#NEW_DB_PASS} characters)"
echo "new password: ${NEW_DB_PASS}"
echo "::port-status-label::Password of ${DB_USER} rotated"
