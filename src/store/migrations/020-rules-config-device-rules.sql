-- The device rules' settings (offline minutes, battery levels, alarm kinds, sensor
-- thresholds) are stored beside the calendar and the categories:
-- `gridpatrol rules config set device-rules` (rules/cases/config.ts).
ALTER TABLE rules_config DROP CONSTRAINT rules_config_key_check;
ALTER TABLE rules_config ADD CONSTRAINT rules_config_key_check CHECK (key IN ('calendar', 'categories', 'device-rules'));
