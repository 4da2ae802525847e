ALTER TABLE lots ADD COLUMN tool text;
