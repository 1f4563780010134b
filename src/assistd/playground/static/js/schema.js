// Validation of function definitions and response-format JSON schemas before they are saved, with
// messages that name the offending path (the server would answer with a 400 otherwise).

const TYPES = new Set(["string", "number", "integer", "boolean", "object", "array", "null"]);
const NAME = /^[a-zA-Z0-9_-]{1,64}$/;

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Structural checks of a JSON schema (the subset function parameters use). */
export function checkSchema(schema, path, errors, depth = 0) {
  if (depth > 32) {
    errors.push(`${path}: nested too deeply`);
    return;
  }
  if (typeof schema === "boolean") return;
  if (!isObject(schema)) {
    errors.push(`${path}: a schema must be an object`);
    return;
  }
  const { type } = schema;
  if (type !== undefined) {
    const types = Array.isArray(type) ? type : [type];
    if (!types.length) errors.push(`${path}.type: must not be empty`);
    for (const t of types) {
      if (typeof t !== "string" || !TYPES.has(t)) {
        errors.push(`${path}.type: ${JSON.stringify(t)} is not a JSON schema type (${[...TYPES].join(", ")})`);
      }
    }
  }
  if (schema.properties !== undefined) {
    if (!isObject(schema.properties)) errors.push(`${path}.properties: must be an object`);
    else {
      for (const [k, v] of Object.entries(schema.properties)) checkSchema(v, `${path}.properties.${k}`, errors, depth + 1);
    }
  }
  if (schema.required !== undefined) {
    if (!Array.isArray(schema.required) || schema.required.some((r) => typeof r !== "string")) {
      errors.push(`${path}.required: must be an array of property names`);
    } else {
      const props = isObject(schema.properties) ? schema.properties : {};
      for (const r of schema.required) {
        if (!Object.hasOwn(props, r)) errors.push(`${path}.required: "${r}" is not in properties`);
      }
    }
  }
  if (schema.items !== undefined) checkSchema(schema.items, `${path}.items`, errors, depth + 1);
  if (schema.additionalProperties !== undefined && typeof schema.additionalProperties !== "boolean") {
    checkSchema(schema.additionalProperties, `${path}.additionalProperties`, errors, depth + 1);
  }
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    if (schema[key] === undefined) continue;
    if (!Array.isArray(schema[key]) || !schema[key].length) errors.push(`${path}.${key}: must be a non-empty array`);
    else schema[key].forEach((s, i) => checkSchema(s, `${path}.${key}[${i}]`, errors, depth + 1));
  }
  for (const key of ["$defs", "definitions"]) {
    if (schema[key] === undefined) continue;
    if (!isObject(schema[key])) errors.push(`${path}.${key}: must be an object`);
    else for (const [k, v] of Object.entries(schema[key])) checkSchema(v, `${path}.${key}.${k}`, errors, depth + 1);
  }
  if (schema.enum !== undefined && (!Array.isArray(schema.enum) || !schema.enum.length)) {
    errors.push(`${path}.enum: must be a non-empty array`);
  }
  if (schema.description !== undefined && typeof schema.description !== "string") {
    errors.push(`${path}.description: must be a string`);
  }
}

function parse(text, errors) {
  try {
    return JSON.parse(text);
  } catch (e) {
    errors.push(`Not valid JSON: ${e.message}`);
    return undefined;
  }
}

/**
 * A function definition as JSON text -> {value, errors}. Accepts {name, description, parameters,
 * strict} or the tool form {"type": "function", "function": {...}}.
 */
export function validateFunction(text) {
  const errors = [];
  let value = parse(text, errors);
  if (errors.length) return { value: null, errors };
  if (isObject(value) && value.type === "function" && isObject(value.function)) value = value.function;
  if (!isObject(value)) return { value: null, errors: ["A function definition must be a JSON object"] };
  for (const k of Object.keys(value)) {
    if (!["name", "description", "parameters", "strict"].includes(k)) errors.push(`Unknown field "${k}"`);
  }
  if (typeof value.name !== "string" || !NAME.test(value.name)) {
    errors.push("name: required; letters, digits, _ and - only, at most 64 characters");
  }
  if (value.description !== undefined && typeof value.description !== "string") errors.push("description: must be a string");
  if (value.strict !== undefined && value.strict !== null && typeof value.strict !== "boolean") {
    errors.push("strict: must be true or false");
  }
  if (value.parameters !== undefined) {
    if (!isObject(value.parameters)) errors.push("parameters: must be a JSON schema object");
    else {
      if (value.parameters.type !== "object") errors.push('parameters.type: must be "object"');
      checkSchema(value.parameters, "parameters", errors);
    }
  }
  return { value: errors.length ? null : value, errors };
}

/** The json_schema of response_format: {name, description?, schema, strict?}. */
export function validateResponseSchema(text) {
  const errors = [];
  const value = parse(text, errors);
  if (errors.length) return { value: null, errors };
  if (!isObject(value)) return { value: null, errors: ["Must be a JSON object: {name, schema, strict}"] };
  if (typeof value.name !== "string" || !NAME.test(value.name)) {
    errors.push("name: required; letters, digits, _ and - only, at most 64 characters");
  }
  if (value.schema === undefined) errors.push("schema: required");
  else checkSchema(value.schema, "schema", errors);
  if (value.strict !== undefined && value.strict !== null && typeof value.strict !== "boolean") {
    errors.push("strict: must be true or false");
  }
  return { value: errors.length ? null : value, errors };
}

export const FUNCTION_TEMPLATE = {
  name: "get_weather",
  description: "Get the current weather in a city",
  parameters: {
    type: "object",
    properties: {
      city: { type: "string", description: "The city, e.g. Paris" },
      unit: { type: "string", enum: ["celsius", "fahrenheit"] },
    },
    required: ["city"],
  },
};
