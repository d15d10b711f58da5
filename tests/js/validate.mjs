// Judge documents against the event contract's JSON Schema with ajv (draft 2020-12).
// Usage: node validate.mjs SCHEMA.json < documents.json   (a JSON array of documents)
// Prints a JSON array of booleans, one per document: true when the schema accepts it.
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const schemaPath = process.argv[2];
if (!schemaPath) {
  console.error("usage: node validate.mjs SCHEMA.json < documents.json");
  process.exit(2);
}
const schema = JSON.parse(readFileSync(schemaPath, "utf8"));
const documents = JSON.parse(readFileSync(0, "utf8"));
if (!Array.isArray(documents)) {
  console.error("stdin must be a JSON array of documents");
  process.exit(2);
}

// strict: an unknown keyword or format in the schema is an error, not silently ignored.
const ajv = new Ajv2020({ strict: true, allErrors: false, validateFormats: true });
addFormats(ajv, ["date-time", "uuid"]);
const validate = ajv.compile(schema);
process.stdout.write(JSON.stringify(documents.map((doc) => validate(doc) === true)) + "\n");
