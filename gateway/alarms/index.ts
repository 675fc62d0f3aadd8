export { AlarmEngine, type AlarmEngineOptions, type AlarmSettings, type AlarmStatus } from './engine.js';
export { AlarmRuleState, type AlarmTransition, type PersistedAlarmState } from './rule-state.js';
