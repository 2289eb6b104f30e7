-- A scikit-learn forest is stored twice: skops (its canonical form) and its trees' arrays
-- (schemas/forests.py), which scorers decode without holding their event loop up. The second
-- form is the same model in the same role, told apart by its format; its artifact_id is
-- '<version>/<role>.tree-arrays'.
ALTER TABLE model_artifacts DROP CONSTRAINT model_artifacts_format_check;
ALTER TABLE model_artifacts ADD CONSTRAINT model_artifacts_format_check
    CHECK (format IN ('xgboost-ubj', 'xgboost-json', 'skops', 'tree-arrays'));

ALTER TABLE model_artifacts DROP CONSTRAINT model_artifacts_version_role_key;
ALTER TABLE model_artifacts ADD CONSTRAINT model_artifacts_version_role_format_key
    UNIQUE (version, role, format);
